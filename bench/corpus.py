"""A deterministic mail corpus for the benchmark, written straight into a Dovecot maildir.

SMALL is 2,000 messages (about 95 MB) in 14 folders with two 10-25 MB messages; LARGE
is 20,000 messages (about 1 GB) with a dozen.  Message n of a corpus is the same bytes
on every run: it is drawn from its own random generator, seeded by the corpus seed and
n.  Most messages are text (with quoted replies, now and then a "From " line in the
body, a missing or shared Message-ID); some carry a base64 attachment.

Loading writes maildir files (LF line endings, INTERNALDATE as the file's mtime, flags
in the name) below the user's home, then `doveadm force-resync` builds the indexes:
far faster than APPEND, and the server then serves them as if they had been appended.
"""

import base64
import datetime as dt
import os
import random
from dataclasses import dataclass

FOLDERS = ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive", "Archive/2019",
           "Archive/2020", "Archive/2021", "Lists/python", "Lists/dovecot", "Lists/debian",
           "Personal", "Work"]
WEIGHTS = [24, 10, 1, 3, 2, 8, 9, 9, 9, 8, 5, 5, 4, 3]
KEYWORDS = ["$Label1", "NonJunk"]  # maildir keyword letters a and b
MAILDIR_FLAGS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S",
                 "$Label1": "a", "NonJunk": "b"}
WORDS = ("backup mailbox folder message server archive quarter report meeting travel "
         "invoice draft review budget plan weekend photos schedule garden bicycle lunch "
         "release notes question answer thanks again later tomorrow from the with a is "
         "of to and patch build kernel python dovecot debian package upload").split()
PEOPLE = ["Alice Example <alice@example.org>", "Bob Beispiel <bob@beispiel.de>",
          "Carol Exemple <carol@exemple.fr>", "Dmitri <dmitri@example.net>",
          "Eve Müller <eve@example.com>", "List <python-list@lists.example.org>"]
TEXT_SIZE = 4_000  # about the mean bytes of a text message, header included
ATTACHMENT = (30_000, 400_000)  # raw bytes of an attachment, before base64
BIG = (10 << 20, 25 << 20)


@dataclass(frozen=True)
class Spec:
    name: str
    messages: int
    big: int
    target_bytes: int
    seed: int


SMALL = Spec("small", 2_000, 2, 95_000_000, 2005)
LARGE = Spec("large", 20_000, 12, 1_000_000_000, 2006)


@dataclass(frozen=True)
class Message:
    folder: str
    data: bytes  # LF line endings, as a maildir keeps it
    flags: tuple[str, ...]
    internaldate: dt.datetime


def _pool(seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 13))).capitalize()
            + ".\n" for _ in range(4096)]


class Corpus:
    """Messages 0..spec.messages-1 (and more, for new mail), each from its own seed."""

    def __init__(self, spec):
        self.spec = spec
        self.lines = _pool(spec.seed)
        rng = random.Random(spec.seed)
        # the big messages' sizes spread evenly over BIG, in a random order
        sizes = [BIG[0] + (BIG[1] - BIG[0]) * (2 * i + 1) // (2 * spec.big)
                 for i in range(spec.big)]
        self.big = dict(zip(rng.sample(range(spec.messages), spec.big), sizes, strict=True))
        attachment_mean = sum(ATTACHMENT) / 2 * 4 / 3
        ordinary = (spec.target_bytes - sum(sizes)) / (spec.messages - spec.big)
        self.attachment_share = max(0.0, (ordinary - TEXT_SIZE) / (attachment_mean - TEXT_SIZE))

    def message(self, number):
        rng = random.Random(self.spec.seed * 1_000_003 + number)
        folder = rng.choices(FOLDERS, WEIGHTS)[0]
        when = dt.datetime(2015, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=number * 4_000 + rng.randrange(3_600))
        header = self._header(rng, number, when)
        body = self._text(rng)
        if number in self.big:
            body = self._with_attachment(rng, number, body, self.big[number] * 3 // 4)
        elif int((number + 1) * self.attachment_share) > int(number * self.attachment_share):
            body = self._with_attachment(rng, number, body, rng.randrange(*ATTACHMENT))
        else:
            header += b"Content-Type: text/plain; charset=utf-8\n"
        flags = [f for f, p in (("\\Seen", 0.8), ("\\Answered", 0.15), ("\\Flagged", 0.05),
                                ("$Label1", 0.03), ("NonJunk", 0.02)) if rng.random() < p]
        if folder == "Drafts":
            flags.append("\\Draft")
        return Message(folder, header + b"\n" + body, tuple(flags), when)

    def _header(self, rng, number, when):
        sender, recipient = rng.sample(PEOPLE, 2)
        address = sender.split("<")[1].rstrip(">")
        lines = [f"Return-Path: <{address}>"] if rng.random() < 0.6 else []
        for hop in range(rng.randrange(1, 4)):
            lines.append(f"Received: from mx{hop}.example.org (mx{hop}.example.org "
                         f"[192.0.2.{hop + 1}])\n\tby mail.example.net with ESMTPS id "
                         f"{rng.getrandbits(48):012x}; {when:%a, %d %b %Y %H:%M:%S +0000}")
        lines += [f"From: {sender}", f"To: {recipient}",
                  f"Subject: {rng.choice(WORDS).capitalize()} {rng.choice(WORDS)} #{number}",
                  f"Date: {when:%a, %d %b %Y %H:%M:%S +0000}"]
        roll = rng.random()
        if roll < 0.01:
            pass  # no Message-ID at all
        elif roll < 0.015:
            lines.append(f"Message-ID: <shared-{number % 7}@bench.example>")
        else:
            lines.append(f"Message-ID: <{number}.{rng.getrandbits(32):08x}@bench.example>")
        lines.append("MIME-Version: 1.0")
        return ("\n".join(lines) + "\n").encode()

    def _text(self, rng):
        count = max(2, int(rng.expovariate(1.0) * TEXT_SIZE / 60))
        lines = [self.lines[rng.randrange(4096)] for _ in range(count)]
        for i in range(len(lines) // 3, len(lines) // 3 + rng.randrange(0, 8)):
            if i < len(lines):
                lines[i] = "> " + lines[i]  # a quoted reply
        if rng.random() < 0.02:
            lines.insert(len(lines) // 2, "From here on it gets tricky.\n")
        return "".join(lines).encode()

    def _with_attachment(self, rng, number, text, size):
        boundary = f"=-bench-{number}"
        blob = base64.encodebytes(rng.randbytes(size))
        return (f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{boundary}\n"
                f"Content-Type: text/plain; charset=utf-8\n\n").encode() + text + (
                f"--{boundary}\nContent-Type: application/octet-stream\n"
                f"Content-Transfer-Encoding: base64\n\n").encode() + blob + (
                f"--{boundary}--\n").encode()


def crlf_size(data):
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def write_maildir(home, messages, uid, gid):
    """Write messages into the maildir (LAYOUT=fs) below home, owned by uid:gid; returns
    (count, bytes, largest).  File names sort in message order, so UIDs follow it."""
    root = os.path.join(home, "Maildir")
    count = total = largest = 0
    made = set()
    for message in messages:
        folder_dir = root if message.folder == "INBOX" else os.path.join(root, message.folder)
        if folder_dir not in made:
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(folder_dir, sub), mode=0o700, exist_ok=True)
            with open(os.path.join(folder_dir, "dovecot-keywords"), "w") as f:
                f.write("".join(f"{i} {k}\n" for i, k in enumerate(KEYWORDS)))
            made.add(folder_dir)
        stamp = int(message.internaldate.timestamp())
        letters = "".join(sorted(MAILDIR_FLAGS[f] for f in message.flags))
        name = (f"{stamp}.M{count:07d}P1.bench,S={len(message.data)},"
                f"W={crlf_size(message.data)}:2,{letters}")
        path = os.path.join(folder_dir, "cur", name)
        with open(path, "wb") as f:
            f.write(message.data)
        os.utime(path, (stamp, stamp))
        count, total = count + 1, total + len(message.data)
        largest = max(largest, len(message.data))
    for directory, dirs, files in os.walk(os.path.dirname(root)):
        for name in [directory, *(os.path.join(directory, n) for n in dirs + files)]:
            os.chown(name, uid, gid)
    return count, total, largest
