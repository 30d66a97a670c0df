"""Flag changes written in place (imapstream(7), "Mbox files", "Backup directory"):
X-Keywords always written with room after its keywords, a change that fits written
over the old flag lines (same inode, nothing moved), one that does not, or a file
written before there was room, rewritten by a copy that leaves room; a fold stopped
at any step is finished by the next; no other header line changes."""

import mailbox
import os
import re

import orjson
import pytest
from plumbing import run
from test_flags_follow import file_flags, records

from imapstream.commands import mbox_ids, mbox_merge
from imapstream.mbox import flagjournal, sidecar
from imapstream.mbox.reader import scan
from imapstream.message import to_lf

ROOM = b" " * 32  # imapstream(7), "Mbox files": the room after X-Keywords' keywords
HEAD = (b'{"folder":"INBOX","delimiter":"/","uidvalidity":7,"uid":%d,"size":%d,'
        b'"flags":%s,"internaldate":"2005-07-01T10:00:00+00:00","length":%d}\n')
META = (b"From MAILER-DAEMON Fri Jul  1 10:00:00 2005\n"
        b"X-Imapstream: folder=INBOX; delimiter=/; uidvalidity=7; uid=%d; size=%d; "
        b"internaldate=2005-07-01T10:00:00+00:00; octets=%d\n")
ONE, TWO = b"Subject: a\r\n\r\nx\r\n", b"Subject: b\r\nStatus: RO\r\n\r\ny\r\n"


def two_messages(directory):
    """mbox-merge -d directory of ONE (\\Seen) and TWO (no flags); the file's path."""
    stream = (HEAD % (1, len(ONE), b'["\\\\Seen"]', len(ONE)) + ONE + b"\n"
              + HEAD % (2, len(TWO), b"[]", len(TWO)) + TWO + b"\n")
    assert run(mbox_merge, ["-d", directory], stream)[0] == 0
    return os.path.join(directory, "INBOX.mbox")


def update(directory, uid, flags):
    record = {"folder": "INBOX", "delimiter": "/", "uidvalidity": 7, "uid": uid,
              "flags": flags, "update": "flags"}
    assert run(mbox_merge, ["-d", directory], orjson.dumps(record) + b"\n") == (0, b"")


def sidecar_rows(path):
    with open(sidecar.path_for(path), "rb") as f:
        return [row for line in f.read().splitlines()[::2] for row in orjson.loads(line)]


def test_a_fold_rewrites_the_flag_headers_in_place(tmp_path):
    """The bytes imapstream(7) gives: X-Keywords always, ROOM spaces after its keywords;
    a change that fits is written over the old headers in place (same inode, same
    length, no other byte moved), the room after the keywords what is left of it."""
    directory = str(tmp_path / "backup")
    path = two_messages(directory)
    one = META % (1, 17, 14) + b"Status: RO\nX-Keywords:" + ROOM + b"\nSubject: a\n\nx\n\n"
    with open(path, "rb") as f:
        assert f.read() == one + (META % (2, 29, 25) + b"Status: O\nX-Keywords:" + ROOM
                                  + b"\nSubject: b\n>Status: RO\n\ny\n\n")
    inode, rows = os.stat(path).st_ino, sidecar_rows(path)
    update(directory, 2, ["\\Flagged", "$Later", "\\Seen"])
    with open(path, "rb") as f:
        assert f.read() == one + (META % (2, 29, 25) + b"Status: RO\nX-Status: F\n"
                                  b"X-Keywords: $Later" + b" " * 12
                                  + b"\nSubject: b\n>Status: RO\n\ny\n\n")
    assert os.stat(path).st_ino == inode
    assert [row[0] for row in sidecar_rows(path)] == [row[0] for row in rows]
    assert sorted(sidecar_rows(path)[1][7]) == ["$Later", "\\Flagged", "\\Seen"]
    assert not os.path.exists(flagjournal.path_for(path))
    update(directory, 2, [])  # room regained
    with open(path, "rb") as f:
        assert f.read() == one + (META % (2, 29, 25) + b"Status: O\nX-Keywords:" + ROOM
                                  + b"\nSubject: b\n>Status: RO\n\ny\n\n")
    assert os.stat(path).st_ino == inode


def test_a_change_without_room_rewrites_the_file_with_room(tmp_path):
    """Flags longer than the room, and a file written before there was room: the file
    is written anew, the changed message's headers with ROOM spaces, so the next change
    fits in place; Python's mailbox reads the flags of both forms."""
    directory = str(tmp_path / "backup")
    path = two_messages(directory)
    many = [f"$Keyword{n}" for n in range(4)]  # 40 bytes of keywords: no room for them
    inode = os.stat(path).st_ino
    update(directory, 1, ["\\Seen", *many])
    two = (META % (2, 29, 25) + b"Status: O\nX-Keywords:" + ROOM
           + b"\nSubject: b\n>Status: RO\n\ny\n\n")
    one = (META % (1, 17, 14) + b"Status: RO\nX-Keywords: " + " ".join(many).encode() + ROOM
           + b"\nSubject: a\n\nx\n\n")
    with open(path, "rb") as f:
        assert f.read() == one + two
    assert os.stat(path).st_ino != inode
    assert [row[0] for row in sidecar_rows(path)] == [0, len(one)]
    # As a file written before the room: no X-Keywords, no spaces.
    old = META % (2, 29, 25) + b"Status: O\nSubject: b\n>Status: RO\n\ny\n\n"
    with open(path, "wb") as f:
        f.write(one + old)
    update(directory, 2, ["\\Answered"])
    new = (META % (2, 29, 25) + b"Status: O\nX-Status: A\nX-Keywords:" + ROOM
           + b"\nSubject: b\n>Status: RO\n\ny\n\n")
    with open(path, "rb") as f:
        assert f.read() == one + new
    inode = os.stat(path).st_ino
    update(directory, 2, ["\\Answered", "\\Seen", "\\Flagged", "Work"])
    assert os.stat(path).st_ino == inode
    box = mailbox.mbox(path)
    assert [(m.get_flags(), m["X-Keywords"].split()) for m in box] == [
        ("RO", many), ("ROAF", ["Work"])]
    assert {r["uid"]: sorted(r["flags"]) for r in records(run(mbox_ids, [path])[1])} == {
        1: sorted(["\\Seen", *many]), 2: ["Work", "\\Answered", "\\Flagged", "\\Seen"]}


@pytest.mark.parametrize("stop", ["save_joined", "rewrite", "save"])
def test_a_fold_in_place_stopped_at_any_step_is_repaired(tmp_path, monkeypatch, stop):
    """Stopped after the headers are written and synced, before the sidecar is written
    or before the journal is: the file holds the new flags, readers (the journal
    applied) too, and the next mbox-merge of the file finishes the fold.  The sidecar
    is written from its segments' bytes (save_joined), or, where the rows are not
    found so (as after a scan: made so here), from all its rows (save)."""
    from imapstream.mbox import fold

    directory = str(tmp_path / "backup")
    path = two_messages(directory)
    if stop == "save":
        monkeypatch.setattr(fold, "_fold_found", lambda *_args: None)
    target = {"save_joined": fold.sidecar, "save": fold.sidecar,
              "rewrite": fold.flagjournal}[stop]

    def killed(*_args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(target, stop, killed)
        record = {"folder": "INBOX", "delimiter": "/", "uidvalidity": 7, "uid": 2,
                  "flags": ["\\Flagged"], "update": "flags"}
        assert run(mbox_merge, ["-d", directory], orjson.dumps(record) + b"\n")[0] == 130
    assert file_flags(path) == {1: ["\\Seen"], 2: ["\\Flagged"]}
    assert flagjournal.read(path)
    assert {r["uid"]: r["flags"] for r in records(run(mbox_ids, [path])[1])} == {
        1: ["\\Seen"], 2: ["\\Flagged"]}
    update(directory, 2, ["\\Flagged"])  # the same update again: the next visit
    assert not os.path.exists(flagjournal.path_for(path))
    assert [r[7] for r in sidecar_rows(path)[-2:]] == [["\\Seen"], ["\\Flagged"]]
    assert file_flags(path) == {1: ["\\Seen"], 2: ["\\Flagged"]}


def test_a_fold_keeps_every_other_header_line(tmp_path):
    """A message whose first line begins with a space (not a continuation of our
    X-Keywords) and one from Gmail (X-GM-THRID and X-Gmail-Labels after the flag
    headers): folds in place and by a copy change the flag headers alone."""
    first = b" leading space\r\nSubject: s\r\n\r\nx\r\n"
    gmail = {"folder": "INBOX", "delimiter": "/", "uidvalidity": 7, "uid": 2, "size": len(TWO),
             "flags": [], "internaldate": "2005-07-01T10:00:00+00:00", "length": len(TWO),
             "gm_msgid": "11", "gm_thrid": "12", "labels": ["\\Inbox"]}
    stream = (HEAD % (1, len(first), b"[]", len(first)) + first + b"\n"
              + orjson.dumps(gmail) + b"\n" + TWO + b"\n")
    directory = str(tmp_path / "backup")
    assert run(mbox_merge, ["-d", directory], stream)[0] == 0
    path = os.path.join(directory, "INBOX.mbox")
    labels = b"X-GM-THRID: 12\nX-Gmail-Labels: Inbox,%s\nSubject: b\n"
    many = [f"$Keyword{n}" for n in range(4)]  # no room: a copy
    for flags, status in ((["\\Seen"], b"RO"), (many, b"O"), (["\\Seen"], b"RO")):
        update(directory, 1, flags)
        update(directory, 2, flags)
        keywords = b"".join(b" " + k.encode() for k in flags if k[0] != "\\")
        text = open(path, "rb").read()
        for start in (b" leading space\nSubject: s\n", labels % b"Unread"):
            head = b"Status: " + status + b"\nX-Keywords:" + keywords
            assert re.search(re.escape(head) + b" +\n" + re.escape(start), text), text
        assert [data for _o, _r, data in scan(path)] == [to_lf(first), to_lf(TWO)]
        assert [r.get("labels") for _o, r, _d in scan(path)] == [None, ["\\Inbox"]]


def test_mutt_reads_flags_written_in_place(tmp_path, program):
    """mutt takes the flags of lines rewritten in place: it deletes by ~F the message
    flagged now, by ~R the one read now, each in a copy of the file."""
    from test_mail_clients import mutt

    program("mutt")
    program("script")
    directory = str(tmp_path / "backup")
    path = two_messages(directory)
    inode = os.stat(path).st_ino
    update(directory, 1, ["\\Flagged"])
    update(directory, 2, ["\\Seen", "$Later"])
    assert os.stat(path).st_ino == inode
    for pattern, left in (("~F", "b"), ("~R", "a")):
        copy = tmp_path / f"copy{left}"
        copy.write_bytes(open(path, "rb").read())
        mutt(copy, tmp_path / "home", f"<delete-pattern>{pattern}<enter>")
        assert [m["Subject"] for m in mailbox.mbox(str(copy))] == [left], pattern


def stream_of(folder, uids, gmail=False):
    """mbox-merge's input: a message per UID of folder (its Message-ID, size and labels
    varying), then the folder's checkpoint."""
    out = b""
    for uid in uids:
        data = b"Subject: %d\r\nMessage-ID: <%d]x@y>\r\n\r\n" % (uid, uid) + b"z" * uid + b"\r\n"
        record = {"folder": folder, "delimiter": "/", "uidvalidity": 7, "uid": uid,
                  "size": len(data), "flags": ["\\Seen"] if uid % 3 else [],
                  "internaldate": "2005-07-01T10:00:00+00:00", "length": len(data)}
        if gmail:
            record.update(gm_msgid=str(1000 + uid), labels=["\\Inbox", f"l]{uid}"])
        out += orjson.dumps(record) + b"\n" + data + b"\n"
    return out + orjson.dumps({"folder": folder, "delimiter": "/", "uidvalidity": 7,
                               "uidnext": max(uids) + 1, "checkpoint": True}) + b"\n"


@pytest.mark.parametrize("gmail", [False, True])
def test_a_fold_finds_the_changed_rows_by_their_bytes(tmp_path, monkeypatch, gmail):
    """Flags changed in a file appended to three times (a sidecar of three segments),
    of a folder whose name needs escaping in JSON, with Gmail's longer rows or not: the
    fold parses no row it does not change (rowspans.py), and leaves the file, its
    sidecar and its journal byte for byte as a fold that reads every row does."""
    from imapstream.mbox import fold

    folder = 'Lists/"quoted" ],[1'
    changes = b"".join(orjson.dumps(
        {"folder": folder, "delimiter": "/", "uidvalidity": 7, "uid": uid,
         "flags": ["\\Flagged", "\\Seen"], "update": "flags"}) + b"\n" for uid in (2, 17, 29))
    files = {}
    for way in ("bytes", "rows"):
        directory = str(tmp_path / way)
        for uids in (range(1, 13), range(13, 25), range(25, 31)):
            assert run(mbox_merge, ["-d", directory], stream_of(folder, uids, gmail))[0] == 0
        path = os.path.join(directory, *(n for n in os.listdir(directory) if n[0] != "."))
        with monkeypatch.context() as patch:
            if way == "bytes":
                patch.setattr(sidecar, "_load_rows", None)  # any read of all rows fails
            else:
                patch.setattr(fold, "_fold_found", lambda *_args: None)
            assert run(mbox_merge, ["-d", directory], changes) == (0, b"")
        assert not os.path.exists(flagjournal.path_for(path))
        with open(path, "rb") as f, open(sidecar.path_for(path), "rb") as ids:
            rows, state, rest = ids.read().split(b"\n", 2)
            state = orjson.loads(state)
            del state["ino"], state["mtime_ns"]  # the two files' own
            files[way] = f.read(), rows, state, rest
    assert files["bytes"] == files["rows"]
    assert files["bytes"][0].count(b"X-Status: F") == 3
    assert files["bytes"][1].count(b"\\\\Flagged") == 3
    assert files["bytes"][3] == b""  # one segment
