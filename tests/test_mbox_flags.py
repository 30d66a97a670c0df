"""Flags and INTERNALDATE travel with each message into the mbox, where Dovecot's own
mbox driver reads them back."""

import datetime as dt
import re

import orjson
from plumbing import append_all, backup, run

from imapstream.commands import mbox_ids

UTC = dt.UTC
FLAG_SETS = [[], [b"\\Seen"], [b"\\Seen", b"\\Answered"], [b"\\Flagged"], [b"\\Draft"],
             [b"\\Seen", b"\\Flagged", b"\\Answered", b"\\Deleted"]]


def test_dovecot_reads_back_flags_and_dates(dovecot, new_user, monkeypatch, tmp_path):
    user, _ = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    source = dovecot.client(user)
    for number, flags in enumerate(FLAG_SETS):
        when = dt.datetime(2004 + number, 2, 3, 4, 5, 6, tzinfo=UTC)
        body = (b"Subject: flags %d\r\nMessage-ID: <f%d@x>\r\n"
                b"Status: RO\r\nX-Status: F\r\n\r\nFrom the body\r\n" % (number, number))
        append_all(source, "INBOX", [body], flags=flags, when=when)
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)

    reader, _ = new_user("mbox")
    dovecot.write_mail_file(reader, "mail/Restored", (tmp_path / "INBOX.mbox").read_bytes())
    target = dovecot.client(reader)
    target.select_folder("Restored", readonly=True)
    seen = target.fetch(target.search("ALL"), ["FLAGS", "INTERNALDATE",
                                               "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    source.select_folder("INBOX", readonly=True)
    original = source.fetch(source.search("ALL"), ["FLAGS", "INTERNALDATE",
                                                   "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    key = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"

    def by_id(items):
        # The message's own Status:/X-Status: lines are escaped, so only the backup's
        # flags count: "flags 0" must read as unseen, unflagged.
        return {i[key].strip(): (sorted(f for f in i[b"FLAGS"] if f != b"\\Recent"),
                                 i[b"INTERNALDATE"].astimezone(UTC))
                for i in items.values()}

    assert by_id(seen) == by_id(original)
    assert len(seen) == len(FLAG_SETS)


def test_keywords_and_dates_survive_in_the_file(dovecot, new_user, monkeypatch, tmp_path):
    user, _ = new_user("maildir++")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    client = dovecot.client(user)
    when = dt.datetime(2005, 7, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    append_all(client, "INBOX", [b"Subject: k\r\n\r\nx\r\n"],
               flags=[b"$label1", b"Work", b"\\Seen"], when=when)
    backup(str(tmp_path))
    text = (tmp_path / "INBOX.mbox").read_bytes()
    assert text.startswith(b"From MAILER-DAEMON Fri Jul  1 10:00:00 2005\n")
    assert b"\nStatus: RO\n" in text and b"\nX-Keywords: $label1 Work" + ROOM + b"\n" in text
    [record] = [r for r in run(mbox_ids, [str(tmp_path / "INBOX.mbox")])[1].splitlines()]
    assert b'"flags":["\\\\Seen","$label1","Work"]' in record
    assert b'"internaldate":"2005-07-01T10:00:00+00:00"' in record


def test_dovecot_reads_system_flags_but_not_keywords(dovecot, new_user, monkeypatch, tmp_path):
    """imapstream(7): Dovecot's mbox driver takes X-Keywords only for keywords its
    X-IMAPbase header names, which an append-only file cannot keep up to date; so no
    X-IMAPbase is written, and Dovecot shows the system flags alone."""
    user, _ = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    append_all(dovecot.client(user), "INBOX", [b"Subject: k\r\n\r\nx\r\n"],
               flags=[b"\\Seen", b"$label1"])
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    text = (tmp_path / "INBOX.mbox").read_bytes()
    assert b"\nX-Keywords: $label1" + ROOM + b"\n" in text and b"X-IMAPbase" not in text
    reader, _ = new_user("mbox")
    dovecot.write_mail_file(reader, "mail/Restored", text)
    target = dovecot.client(reader)
    target.select_folder("Restored", readonly=True)
    assert [sorted(f for f in flags if f != b"\\Recent")
            for flags in target.get_flags(target.search("ALL")).values()] == [[b"\\Seen"]]


ROOM = b" " * 32  # imapstream(7), "Mbox files": spaces after the keywords

# Keywords are atoms (RFC 3501): any printable ASCII but ( ) { SP % * " \ ].
ATOMS = [b"a,b", b"$Label1", b",lead", b"trail,", b"!#&'+-./", b"0:;<=>?@", b"^_`|}~"]


def test_keywords_of_any_atom_characters_read_back_as_written(dovecot, new_user,
                                                             monkeypatch, tmp_path):
    """X-Keywords holds the keywords separated by a space, as Dovecot's mbox driver
    reads and writes them: a comma is part of a keyword, in our files and Dovecot's."""
    user, _ = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    append_all(dovecot.client(user), "INBOX", [b"Subject: k\r\n\r\nx\r\n"], flags=ATOMS)
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    path = tmp_path / "INBOX.mbox"
    assert b"\nX-Keywords: " + b" ".join(ATOMS) + ROOM + b"\n" in path.read_bytes()
    assert read_flags(path) == [atom.decode() for atom in ATOMS]
    reader, _ = new_user("mbox")  # Dovecot's mbox driver writes them into its own file
    dovecot.write_mail_file(reader, "mail/Copy", b"From a@b Sat Jul  1 10:00:00 2005\n"
                            b"Subject: k\n\nx\n\n")
    with dovecot.client(reader) as driver:
        driver.select_folder("Copy")
        driver.add_flags([1], ATOMS)
    copy = dovecot.home(reader) / "mail" / "Copy"
    assert re.search(rb"\nX-Keywords: " + re.escape(b" ".join(ATOMS)) + rb" *\n",
                     copy.read_bytes())  # padded with spaces, to change in place
    assert read_flags(copy) == [atom.decode() for atom in ATOMS]


def read_flags(path):
    [record] = run(mbox_ids, [str(path)])[1].splitlines()
    return [flag for flag in orjson.loads(record)["flags"] if not flag.startswith("\\")]
