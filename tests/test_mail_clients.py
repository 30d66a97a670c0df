"""Mail clients open the backup in place and edit it (imapstream(7), "Mbox files"): the
real mutt, Python's mailbox and Dovecot's mbox driver, and a Thunderbird compaction as
its documented headers say.  Each moves or adds header lines, changes flags or removes
messages; the next run recognises every message the file still holds, fetches again
only those the client removed, the run after adds nothing, the file then holds the
server's messages count for count, and every message restores byte for byte."""

import io
import mailbox
import re
import subprocess

import orjson
import pytest
from plumbing import AWKWARD, append_all, backup, run

from imapstream import errors
from imapstream.commands import imap_append, mbox_ids, mbox_merge
from imapstream.mbox.reader import iter_messages, scan
from imapstream.message import to_lf

LAST = b"Subject: the last one\r\nMessage-ID: <last@x>\r\n\r\nread me last\r\n"
MESSAGES = [*AWKWARD, LAST]  # UIDs 1.. in this order
FROM_LINE = re.compile(rb"^From ", re.M)


@pytest.fixture
def backed_up(account, tmp_path):
    """(IMAP client, the backup's INBOX.mbox) after a first backup of MESSAGES."""
    append_all(account, "INBOX", MESSAGES)
    assert backup(str(tmp_path / "backup"))[0] == (0, 0, 0, 0)
    return account, tmp_path / "backup" / "INBOX.mbox"


def server(client):
    """{uid: the message in LF form} of INBOX."""
    client.select_folder("INBOX", readonly=True)
    fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
    return {uid: to_lf(item[b"BODY[]"]) for uid, item in fetched.items()}


def held(path):
    """mbox-ids's records of path; it must exit 0."""
    status, out = run(mbox_ids, [str(path)])
    assert status == errors.OK
    return [orjson.loads(line) for line in out.splitlines()]


def uids(path):
    return sorted(record["uid"] for record in held(path))


def assert_rerun_refetches(client, path, removed):
    """The run after the edit fetches exactly the removed UIDs (and gives the flags the
    client changed back the server's), the next one nothing; then the file holds each
    server message once, every one byte for byte, with the server's flags in its own
    headers (imapstream(7), "Flag journal")."""
    statuses, missing, _stream = backup(str(path.parent))
    assert statuses == (0, 0, 0, 0)
    assert sorted(record["uid"] for record in map(orjson.loads, missing.splitlines())
                  if "update" not in record) == removed
    assert backup(str(path.parent))[1] == b""
    original = server(client)
    assert uids(path) == sorted(original)
    assert {record["uid"]: data for _offset, record, data in scan(path)} == original
    on_server = {uid: sorted(f.decode() for f in item[b"FLAGS"] if f != b"\\Recent")
                 for uid, item in client.fetch(sorted(original), ["FLAGS"]).items()}
    assert flags(path) == on_server
    assert {record["uid"]: sorted(record["flags"]) for _o, record, _d in scan(path)
            } == on_server


def flags(path):
    return {record["uid"]: sorted(record["flags"]) for record in held(path)}


def mutt(path, home, keys):
    """Debian's mutt on path, keys pushed and the mailbox written back (sync, quit)."""
    (home / "Mail").mkdir(parents=True, exist_ok=True)
    setup = ("set move=no quit=yes delete=yes mark_old=no resolve=no wait_key=no "
             "sort=mailbox-order")
    command = (f"mutt -n -F /dev/null -e '{setup}' -f {path} "
               f"-e 'push \"{keys}<sync-mailbox><quit>\"'")
    subprocess.run(["script", "-qec", command, "/dev/null"], env={
        "HOME": str(home), "TERM": "xterm", "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60, check=True)


def test_mutt_reads_flags_and_deletes(backed_up, tmp_path, program):
    """mutt moves Status to the end of each header it rewrites and adds X-Status,
    Content-Length and Lines; the flags it wrote are the held records' flags."""
    program("mutt")
    program("script")
    client, path = backed_up
    mutt(path, tmp_path / "home", "<first-entry><flag-message><next-entry><delete-message>"
         "<last-entry><display-message><exit>")
    text = path.read_bytes()
    assert b"\nContent-Length: " in text and b"\nLines: " in text
    assert len(FROM_LINE.findall(text)) == len(MESSAGES) - 1
    assert flags(path)[1] == ["\\Flagged"] and flags(path)[len(MESSAGES)] == ["\\Seen"]
    assert_rerun_refetches(client, path, [2])


def test_python_mailbox_marks_the_last_message_read(backed_up):
    """Python's mailbox adds an empty X-Status line to the last message: it is neither
    torn nor cut, even once the server no longer has it."""
    client, path = backed_up
    box = mailbox.mbox(str(path))
    box.lock()
    keys = box.keys()
    for key, flag in ((keys[-1], "R"), (keys[0], "F")):
        message = box[key]
        message.add_flag(flag)
        box[key] = message
    box.remove(keys[3])
    box.flush()
    box.unlock()
    assert path.read_bytes().endswith(b"\nX-Status: \n\nread me last\n\n")
    assert flags(path)[len(MESSAGES)] == ["\\Seen"] and flags(path)[1] == ["\\Flagged"]
    assert_rerun_refetches(client, path, [4])
    client.select_folder("INBOX")
    client.delete_messages([len(MESSAGES)])
    client.expunge()
    assert backup(str(path.parent))[0] == (0, 0, 0, 0)
    assert [data for _o, record, data in scan(path) if record["uid"] == len(MESSAGES)] == [
        to_lf(LAST)]


def test_dovecot_writes_flags_into_a_copy(backed_up, dovecot, new_user):
    """Dovecot's mbox driver adds X-IMAPbase, X-UID, X-Status and X-Keywords and
    expunges in place; the copy it leaves is the backup."""
    client, path = backed_up
    user, _ = new_user("mbox")
    copy = dovecot.write_mail_file(user, "mail/Copy", path.read_bytes())
    with dovecot.client(user) as driver:
        driver.select_folder("Copy")
        on_file = driver.search("ALL")
        driver.add_flags(on_file[0], [b"\\Answered", b"Work"])
        driver.add_flags(on_file[-1], [b"\\Seen"])
        driver.delete_messages(on_file[5])
        driver.expunge()
    path.write_bytes(copy.read_bytes())
    assert b"\nX-IMAPbase: " in path.read_bytes()
    assert flags(path)[1] == ["Work", "\\Answered"]
    assert flags(path)[len(MESSAGES)] == ["\\Seen"]
    assert_rerun_refetches(client, path, [6])


def test_thunderbird_compacts_the_file(backed_up):
    """Thunderbird's compaction writes each message it keeps with X-Mozilla-Status
    (4 hex digits), X-Mozilla-Status2 (8) and X-Mozilla-Keys (padded to 80 spaces)
    first after the From line, and leaves out those it deleted."""
    client, path = backed_up
    text = path.read_bytes()
    starts = [match.start() for match in FROM_LINE.finditer(text)] + [len(text)]
    compacted = []
    for number, (start, end) in enumerate(zip(starts, starts[1:], strict=False), 1):
        if number in (3, 7):
            continue
        envelope = text.index(b"\n", start) + 1
        compacted += [text[start:envelope], b"X-Mozilla-Status: 0001\n",
                      b"X-Mozilla-Status2: 00000000\n", b"X-Mozilla-Keys: " + b" " * 80 + b"\n",
                      text[envelope:end]]
    path.write_bytes(b"".join(compacted))
    assert_rerun_refetches(client, path, [3, 7])


def test_a_restore_of_an_edited_file_gives_back_the_original_bytes(backed_up, tmp_path,
                                                                  dovecot, new_user,
                                                                  monkeypatch):
    client, path = backed_up
    box = mailbox.mbox(str(path))
    for key in box.keys():
        message = box[key]
        message.add_flag("RF")
        box[key] = message
    box.flush()
    # Python's parser ends the header at the first line of "first line is From" (see
    # AWKWARD) and writes the flags' header before it, and folds "Message-ID:\n <x>" as
    # "Message-ID: \n <x>": those two messages it changed.
    original = sorted(data for data in server(client).values() if not changed(data))
    user, _ = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["-d", str(path.parent)])[0] == errors.OK
    with dovecot.client(user) as restored:
        back = server(restored).values()
        assert sorted(data for data in back if not changed(data)) == original
        assert len(back) == len(MESSAGES)
        fetched = restored.fetch(restored.search("ALL"), ["FLAGS"])
        assert all(b"\\Flagged" in item[b"FLAGS"] for item in fetched.values())


def changed(data):
    return b"is From" in data or b"<folded@x>" in data


def test_a_message_that_matches_nothing_is_kept_and_reported(backed_up, capsys):
    """A message of ours shorter than its octets say, and no client header moved or
    added, is not the last of its file (a crash's torn tail, another program appended
    after it): kept as a foreign message, reported, and its server message fetched
    again; the folder's other records are not held back."""
    client, path = backed_up
    [offset] = [record["offset"] for record in held(path) if record["uid"] == 3]
    text = path.read_bytes()
    assert text.count(b"\nsecond, different text\n\nFrom ") == 1
    path.write_bytes(text.replace(b"\nsecond, different text\n", b"\nsecond, diff\n"))
    statuses, missing, _stream = backup(str(path.parent))
    assert statuses == (0, 0, 0, 0)
    assert [orjson.loads(line)["uid"] for line in missing.splitlines()] == [3]
    err = capsys.readouterr().err
    assert (f"mbox-ids: {path}: message at byte {offset}: message not as long as its "
            f"X-Imapstream header says; kept, as a copy of no message on the server\n") in err
    assert backup(str(path.parent))[1] == b""
    assert len(held(path)) == len(MESSAGES) + 1


# Written from imapstream(7), "Mbox files": a message of 46 bytes in LF form with its own
# (escaped) Status and a Lines field of its own, then as mutt, Thunderbird and a crash
# leave it.  size is its length with CRLF line endings.
DATA = b"Subject: hi\nStatus: RO\nLines: 2\n\nFrom me\nbody\n"
META = b"X-Imapstream: folder=INBOX; uidvalidity=5; uid=7; size=52; octets=46\n"
AS_WRITTEN = (b"From MAILER-DAEMON Fri Jul  1 12:00:00 2005\n" + META + b"Status: O\n"
              b"Subject: hi\n>Status: RO\nLines: 2\n\n>From me\nbody\n\n")
MUTT = (b"From MAILER-DAEMON Fri Jul  1 12:00:00 2005\n" + META +
        b"Subject: hi\n>Status: RO\nLines: 2\nStatus: RO\nX-Status: F\nContent-Length: 14\n"
        b"Lines: 2\n\n>From me\nbody\n")
THUNDERBIRD = (b"From - Fri Jul  1 12:00:00 2005\nX-Mozilla-Status: 0001\n"
               b"X-Mozilla-Status2: 00000000\nX-Mozilla-Keys:" + b" " * 80 + b"\n" + META +
               b"Status: O\nSubject: hi\n>Status: RO\nLines: 2\n\n>From me\nbody\n\n")


@pytest.mark.parametrize(("text", "flags"), [(AS_WRITTEN, []), (MUTT, ["\\Seen", "\\Flagged"]),
                                             (THUNDERBIRD, [])])
def test_the_fields_a_client_adds_are_not_the_messages(text, flags):
    [(_offset, record, data)] = iter_messages(io.BytesIO(text), "t")
    assert data == DATA
    assert (record["uid"], record["size"], record["flags"]) == (7, 52, flags)


def test_only_a_torn_message_as_written_is_cut(tmp_path, capsys):
    """Cut short, the last message as we wrote it is torn and cut off; rewritten by a
    client and short of its octets all the same (mutt dropped the message's own Lines
    field), it is kept as it is now, and so is a message that matches nothing."""
    torn = tmp_path / "torn.mbox"
    torn.write_bytes(MUTT + AS_WRITTEN[:-3])
    assert run(mbox_merge, [str(torn)], MUTT)[0] == errors.OK
    assert torn.read_bytes() == MUTT
    assert f"cut off a torn last message at byte {len(MUTT)}" in capsys.readouterr().err
    dropped = tmp_path / "dropped.mbox"
    without_lines = MUTT.replace(b"Lines: 2\n", b"")
    dropped.write_bytes(AS_WRITTEN + without_lines)
    assert run(mbox_merge, [str(dropped)], AS_WRITTEN)[0] == errors.OK
    assert dropped.read_bytes() == AS_WRITTEN + without_lines
    [(_o, _r, _d), (_offset, record, data)] = iter_messages(io.BytesIO(without_lines * 2), "t")
    assert record["uid"] == 7 and data == DATA.replace(b"Lines: 2\n", b"")
    longer = tmp_path / "longer.mbox"
    longer.write_bytes(AS_WRITTEN + AS_WRITTEN.replace(b"body\n\n", b"body\nmore\n\n"))
    assert run(mbox_merge, [str(longer)], AS_WRITTEN)[0] == errors.OK
    assert longer.read_bytes() == AS_WRITTEN + AS_WRITTEN.replace(b"body\n\n", b"body\nmore\n\n")
    assert (f"message at byte {len(AS_WRITTEN)}: message not as long as its X-Imapstream "
            f"header says; kept") in capsys.readouterr().err
