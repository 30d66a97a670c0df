"""Deterministic sample mail for the demo, the tests and the benchmarks.

A few hundred messages across nested folders, with the cases that trip up mbox writers
and Message-ID based backups, each with its flags and a chosen INTERNALDATE.  The same
messages come out of every call, byte for byte.  Folder names use "/" as hierarchy
delimiter; append_sample_mail() turns it into the server's own.

    with dovecot.client(user) as client:
        per_folder = append_sample_mail(client)
"""

from __future__ import annotations

import base64
import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass

SEED = 2005
Q3 = "Personal/2005/Q3"
DRAFTS_DE = "Entwürfe"
PUNCTUATED = 'Projects & "Ideas" (2024)'
# Folder, number of ordinary messages, first and last INTERNALDATE day, UTC offset (hours).
PLAN = [
    ("INBOX", 110, dt.date(2024, 1, 1), dt.date(2024, 6, 30), 1),
    ("Sent", 40, dt.date(2023, 9, 1), dt.date(2024, 6, 30), 2),
    ("Drafts", 6, dt.date(2024, 5, 1), dt.date(2024, 6, 30), 0),
    ("Archive", 50, dt.date(2010, 1, 1), dt.date(2019, 12, 31), -5),
    ("Personal", 12, dt.date(2004, 1, 1), dt.date(2004, 12, 31), 1),
    ("Personal/2005", 0, None, None, 0),
    (Q3, 45, dt.date(2005, 7, 1), dt.date(2005, 9, 30), 2),
    (DRAFTS_DE, 8, dt.date(2021, 3, 1), dt.date(2021, 3, 31), 1),
    (PUNCTUATED, 20, dt.date(2024, 2, 1), dt.date(2024, 4, 30), 9),
]
FOLDERS = [folder for folder, *_rest in PLAN]
KEYWORDS = ["$Label1", "$Label3", "NonJunk", "project-x"]
WORDS = ("backup mailbox folder message server archive quarter report meeting travel "
         "invoice draft review budget plan weekend photos schedule garden bicycle lunch "
         "release notes question answer thanks again later tomorrow").split()
PEOPLE = ["Alice Example <alice@example.org>", "Bob Beispiel <bob@beispiel.de>",
          "Carol Exemple <carol@exemple.fr>", "Dmitri <dmitri@example.net>",
          "Eve Müller <eve@example.com>"]


@dataclass(frozen=True)
class SampleMessage:
    folder: str
    data: bytes
    flags: tuple[str, ...]
    internaldate: dt.datetime


def _awkward(when):
    """The messages that break naive backups, each with a subject saying which case."""
    shared = b"Message-ID: <shared@sample.example>\r\n"
    copy = b"Subject: identical copy\r\nMessage-ID: <copy@sample.example>\r\n\r\nsame bytes\r\n"
    cases = [
        ("INBOX", b"Subject: no Message-ID at all\r\nFrom: nobody@example.org\r\n\r\nx\r\n"),
        ("INBOX", b"Subject: shared Message-ID, first\r\n" + shared + b"\r\none text\r\n"),
        ("INBOX", b"Subject: shared Message-ID, second\r\n" + shared + b"\r\nanother\r\n"),
        ("INBOX", copy),
        ("INBOX", copy),
        ("Archive", copy),
        ("INBOX", b"Subject: two Message-ID headers\r\nMessage-ID: <first@sample.example>\r\n"
                  b"Message-ID: <second@sample.example>\r\n\r\nqmail and Groups did this\r\n"),
        ("INBOX", b"Subject: folded Message-ID\r\nMessage-ID:\r\n <folded@sample.example>\r\n"
                  b"\r\nExchange did this\r\n"),
        ("INBOX", b"Subject: From lines in the body\r\nMessage-ID: <from@sample.example>\r\n"
                  b"\r\nFrom here on, it gets tricky.\r\n>From quoted\r\n>>From twice\r\n"
                  b"From \r\n"),
        ("INBOX", b"From sender@example.org Fri Jul  1 12:00:00 2005\r\n"
                  b"Subject: first line is a From line\r\nMessage-ID: <envelope@sample.example>"
                  b"\r\n\r\nbody\r\n"),
        (DRAFTS_DE, b"Subject: =?iso-8859-1?q?Gr=FC=DFe?=\r\nMessage-ID: <latin1@sample.example>"
                    b"\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
                    b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                    b"Sch\xf6ne Gr\xfc\xdfe, \xe9t\xe9 \xff\r\n"),
        (DRAFTS_DE, b"Subject: no trailing newline\r\nMessage-ID: <nonl@sample.example>\r\n\r\n"
                    b"the last line ends here"),
        (Q3, b"Subject: headers only\r\nMessage-ID: <headers@sample.example>\r\n"),
        (Q3, b"Subject: Status headers of its own\r\nMessage-ID: <status@sample.example>\r\n"
             b"Status: RO\r\nX-Status: F\r\nX-Keywords: fake\r\n\r\nonce lived in an mbox\r\n"),
    ]
    flags = [(), ("\\Seen",), ("\\Seen", "\\Flagged"), ("\\Answered",), ("\\Answered",), (),
             ("\\Draft",), ("$Label1",), ("\\Seen", "project-x"), (), ("\\Draft",),
             ("\\Draft", "\\Seen"), ("\\Flagged",), ()]
    return [SampleMessage(folder, data, flag, when + dt.timedelta(minutes=n))
            for n, ((folder, data), flag) in enumerate(zip(cases, flags, strict=True))]


def _flags(rng, folder):
    flags = ["\\Seen"] if rng.random() < 0.7 else []
    if folder in ("Drafts", DRAFTS_DE):
        flags.append("\\Draft")
    if rng.random() < 0.12:
        flags.append("\\Flagged")
    if folder != "Drafts" and rng.random() < 0.15:
        flags.append("\\Answered")
    if rng.random() < 0.1:
        flags.append(rng.choice(KEYWORDS))
    return tuple(flags)


def _when(rng, first, last, offset):
    day = first + dt.timedelta(days=rng.randrange((last - first).days + 1))
    zone = dt.timezone(dt.timedelta(hours=offset))
    return dt.datetime(day.year, day.month, day.day, rng.randrange(24), rng.randrange(60),
                       rng.randrange(60), tzinfo=zone)


def _text(rng, lines):
    return "".join(" ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 12))).capitalize()
                   + ".\r\n" for _ in range(lines))


def _ordinary(rng, folder, number, when):
    slug = "".join(c if c.isalnum() else "-" for c in folder.encode("ascii", "replace").decode())
    sender, recipient = rng.sample(PEOPLE, 2)
    subject = f"{rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} #{number}"
    header = (f"Return-Path: <{sender.split('<')[1]}\r\n" if rng.random() < 0.5 else "")
    header += (f"From: {sender}\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
               f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S %z')}\r\n"
               f"Message-ID: <{slug}.{number}@sample.example>\r\nMIME-Version: 1.0\r\n")
    if number % 25 == 7:  # now and then an attachment, so sizes differ a lot
        blob = base64.encodebytes(rng.randbytes(rng.randrange(20_000, 150_000))).decode()
        boundary = f"=-{number}-sample"
        return (header + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
                f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                f"{_text(rng, 3)}--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Transfer-Encoding: base64\r\n\r\n"
                f"{blob.replace(chr(10), chr(13) + chr(10))}--{boundary}--\r\n").encode()
    return (header + "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            f"Grüße from {sender.split(' <')[0]},\r\n\r\n{_text(rng, rng.randrange(2, 20))}"
            ).encode()


def sample_messages() -> list[SampleMessage]:
    """Every sample message in APPEND order; the same list on every call."""
    rng = random.Random(SEED)
    messages = []
    for folder, count, first, last, offset in PLAN:
        for number in range(count):
            when = _when(rng, first, last, offset)
            messages.append(SampleMessage(folder, _ordinary(rng, folder, number, when),
                                          _flags(rng, folder), when))
    when = dt.datetime(2005, 7, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    return messages + _awkward(when)


def messages_per_folder(messages=None) -> Counter:
    """{folder: number of messages}, with the empty folders at 0."""
    counts = Counter({folder: 0 for folder in FOLDERS})
    counts.update(m.folder for m in (sample_messages() if messages is None else messages))
    return counts


def append_sample_mail(client, messages=None) -> Counter:
    """Create the sample folders through a logged-in IMAPClient and APPEND the messages
    (default: all of them) with their flags and INTERNALDATEs.  Returns
    messages_per_folder() for what was appended."""
    messages = sample_messages() if messages is None else messages
    [(_flags, delimiter, _name)] = client.list_folders("", "INBOX")
    delimiter = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
    existing = {name for _flags, _delimiter, name in client.list_folders()}
    for folder in FOLDERS:
        name = folder.replace("/", delimiter)
        if name not in existing:
            client.create_folder(name)
    for message in messages:
        client.append(message.folder.replace("/", delimiter), message.data,
                      flags=message.flags, msg_time=message.internaldate)
    return messages_per_folder(messages)
