"""The STABLE formats of imapstream(7), byte for byte, both ways.  tests/golden/ holds
files typed from the man page, not written by imapstream: the NDJSON records (folder,
message, checkpoint, held), the message stream, the mbox form with its From-quoting,
reserved-header escapes and flag headers, and the sidecar with its folder checkpoints
(its bytes from mbox/sidecar.py's docstring: imapstream(7) says only what it holds).
The real commands, run against Dovecot holding tests/golden/messages with fixed flags,
dates and UIDVALIDITYs, must write exactly these bytes, and read them back.

Normalised: only what the server and the file system decide.  The server's LIST order
(folder records are compared as a set of lines); the sidecar's inode, mtime and hashes,
which golden/backup/.*.ids has as @INO@, @MTIME_NS@, @HEAD@, @TAIL@ and @SHA1@ and the
test fills in (hashlib over the golden mbox, as mbox/sidecar.py says).  INTERNALDATE
is written in UTC: the server runs with the machine's zone, UTC in CI.
"""

import datetime as dt
import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from plumbing import run

from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox import archive, reader, scan
from imapstream.stream import read_messages

GOLDEN = Path(__file__).parent / "golden"
CAFE = "Lists/Caf\u00e9 100%"
CAFE_FILE = "Lists.Caf\u00e9 100%25.mbox"
UTC = dt.UTC
# (folder, message file, flags, INTERNALDATE, UIDVALIDITY of the folder)
MESSAGES = [
    ("INBOX", "INBOX-1.eml", [b"\\Seen"], dt.datetime(2005, 7, 1, 10, 0, 0, tzinfo=UTC)),
    ("INBOX", "INBOX-2.eml", [b"\\Answered", b"\\Flagged", b"$label1", b"Work"],
     dt.datetime(2005, 7, 2, 11, 30, 0, tzinfo=UTC)),
    ("INBOX", "INBOX-3.eml", [b"\\Draft", b"\\Deleted"],
     dt.datetime(2005, 7, 3, 0, 0, 1, tzinfo=UTC)),
    (CAFE, "Cafe-1.eml", [b"$label1"], dt.datetime(2006, 1, 2, 3, 4, 5, tzinfo=UTC)),
]
UIDVALIDITY = {"INBOX": 1130, "Lists": 1131, CAFE: 1132}


def golden(name):
    return (GOLDEN / name).read_bytes()


def eml(name):
    return golden(f"messages/{name}")


@pytest.fixture(scope="module")
def server(dovecot):
    """A user holding the golden messages, with the golden UIDVALIDITYs; its IMAP_*
    variables set while the module runs."""
    user, _password = dovecot.new_user("fs")
    with dovecot.client(user) as client:
        client.create_folder("Lists")
        client.create_folder(CAFE)
        for folder, name, flags, when in MESSAGES:
            client.append(folder, eml(name), flags=flags, msg_time=when)
    for folder, uidvalidity in UIDVALIDITY.items():
        dovecot.doveadm("mailbox", "update", "--uid-validity", str(uidvalidity), "-u", user,
                        folder)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in dovecot.env(user).items():
            patch.setenv(key, value)
        yield user


def filled_sidecar(template, mbox):
    """A golden sidecar with what the file system decided about mbox filled in."""
    data, st = mbox.read_bytes(), mbox.stat()
    rows, header = template.split(b"\n")[:2]  # one segment: its rows, its state

    def sha1(part):
        return hashlib.sha1(part).hexdigest().encode()

    for mark, value in ((b"@INO@", b"%d" % st.st_ino), (b"@MTIME_NS@", b"%d" % st.st_mtime_ns),
                        (b"@HEAD@", sha1(data[:4096])), (b"@TAIL@", sha1(data[-4096:])),
                        (b"@SHA1@", sha1(rows))):
        header = header.replace(mark, value)
    return rows + b"\n" + header + b"\n"


def golden_backup(directory, sidecars=True):
    """A copy of golden/backup, its sidecars filled in (or left out)."""
    shutil.copytree(GOLDEN / "backup", directory,
                    ignore=None if sidecars else shutil.ignore_patterns(".*"))
    for name in ("INBOX.mbox", CAFE_FILE, "Lists.mbox"):
        ids = directory / f".{name}.ids"
        if sidecars:
            ids.write_bytes(filled_sidecar(ids.read_bytes(), directory / name))
    return directory


def test_folder_records(server):
    status, out = run(imap_list, [])
    assert status == 0
    assert sorted(out.splitlines()) == sorted(golden("folders.ndjson").splitlines())


def test_message_records_and_checkpoints(server, tmp_path):
    status, out = run(imap_list, ["--since", str(tmp_path / "none"), "INBOX", CAFE, "Lists"])
    assert status == 0
    assert out == golden("listing.ndjson")


def test_message_stream(server):
    assert run(imap_fetch, [], golden("listing.ndjson")) == (0, golden("stream"))


def test_mbox_form(server):
    status, out = run(imap_fetch, ["--mbox"], golden("listing.ndjson"))
    assert status == 0
    assert out == golden("backup/INBOX.mbox") + golden(f"backup/{CAFE_FILE}")


def test_mbox_merge_writes_the_mbox_form_sidecar_and_checkpoints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(mbox_merge, ["-d", "backup"], golden("stream")) == (0, b"")
    written = tmp_path / "backup"
    assert sorted(p.name for p in written.iterdir()) == sorted(
        p.name for p in (GOLDEN / "backup").iterdir())
    for name in ("INBOX.mbox", CAFE_FILE, "Lists.mbox"):
        assert (written / name).read_bytes() == golden(f"backup/{name}")
        assert (written / f".{name}.ids").read_bytes() == filled_sidecar(
            golden(f"backup/.{name}.ids"), written / name)
        assert (written / name).stat().st_mode & 0o777 == 0o600


def test_held_records_and_checkpoints_from_the_sidecar(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    golden_backup(tmp_path / "backup")

    def unread(*_args, **_kwargs):
        raise AssertionError("a sidecar that describes its file was not used")

    monkeypatch.setattr(reader, "HeldScan", unread)
    assert run(mbox_ids, ["-d", "backup"]) == (0, golden("held.ndjson"))
    assert run(mbox_ids, ["--folders", "-d", "backup"]) == (0, golden("checkpoints.ndjson"))
    checkpoints = [line + b"\n" for line in golden("listing.ndjson").splitlines()
                   if b'"checkpoint"' in line]
    assert run(mbox_ids, ["--missing", "-d", "backup"], golden("listing.ndjson")) == (
        0, b"".join(checkpoints))


def test_held_records_from_the_mbox_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    golden_backup(tmp_path / "backup", sidecars=False)
    assert run(mbox_ids, ["-d", "backup"]) == (0, golden("held.ndjson"))
    assert run(mbox_ids, ["--folders", "-d", "backup"]) == (0, b"")
    assert run(mbox_ids, ["--missing", "-d", str(tmp_path / "empty")],
               golden("listing.ndjson")) == (0, golden("listing.ndjson"))


def test_checkpoints_are_read_back_by_since(server, tmp_path):
    wanted = (0, golden("nothing-new.ndjson"))
    assert run(imap_list, ["--since", str(GOLDEN / "checkpoints.ndjson"), "INBOX",
                           CAFE]) == wanted
    backup = golden_backup(tmp_path / "backup")
    assert run(imap_list, ["--since", str(backup), "INBOX", CAFE]) == wanted


def test_the_stream_reads_back(tmp_path):
    records = golden("listing.ndjson").splitlines()
    got = list(read_messages(io.BytesIO(golden("stream"))))
    expected_data = iter(eml(name) for _f, name, _flags, _when in MESSAGES)
    assert len(got) == len(records)
    for (record, data), line in zip(got, records, strict=True):
        listed = json.loads(line)
        if "checkpoint" in listed:
            assert (record, data) == (listed, None)
        else:
            data_wanted = next(expected_data)
            assert record == dict(listed, length=len(data_wanted))
            assert data == data_wanted


def test_the_mbox_reads_back(tmp_path):
    inbox = GOLDEN / "backup" / "INBOX.mbox"
    got = list(reader.scan(str(inbox)))
    held = [json.loads(line) for line in golden("held.ndjson").splitlines()]
    assert [offset for offset, _r, _d in got] == [h["offset"] for h in held[:3]]
    for (_offset, record, data), (_folder, name, _flags, _when), want in zip(
            got, MESSAGES, held, strict=False):
        assert data == eml(name).replace(b"\r\n", b"\n")
        assert record == {k: v for k, v in want.items() if k not in ("file", "offset")}
    # An mbox on standard input is stored again exactly as it was.
    copy = tmp_path / "copy.mbox"
    assert run(mbox_merge, [str(copy)], inbox.read_bytes())[0] == 0
    assert copy.read_bytes() == inbox.read_bytes()


def test_block_size_is_irrelevant_to_the_bytes(tmp_path, monkeypatch):
    """Reading the golden mbox a few bytes at a time gives the same held records."""
    monkeypatch.setattr(scan, "BLOCK", 7)
    monkeypatch.chdir(tmp_path)
    golden_backup(tmp_path / "backup", sidecars=False)
    assert run(mbox_ids, ["-d", "backup"]) == (0, golden("held.ndjson"))
    assert os.listdir(tmp_path / "backup")


@pytest.mark.parametrize(("folder", "delimiter", "name"), [
    ("Personal/2005/Q3", "/", "Personal.2005.Q3.mbox"),  # imapstream(7)'s examples
    ("Personal.2005.Q3", ".", "Personal.2005.Q3.mbox"),
    ("a.b", "/", "a%2Eb.mbox"),
    (CAFE, "/", CAFE_FILE),
    ("~/x\\y\x01", None, "%7E%2Fx%5Cy%01.mbox"),
])
def test_backup_directory_names(folder, delimiter, name, tmp_path):
    assert archive.folder_path(str(tmp_path), folder, delimiter) == str(tmp_path / name)


def test_a_message_that_does_not_end_where_octets_says_is_kept_and_reported(tmp_path,
                                                                          capsys):
    """imapstream(7), "Mbox files": a message as written that is not as long as octets
    says, and not torn, is unmatched: kept, reported, a copy of no server message.  As
    mbox-merge reads an mbox on standard input, and mbox-ids a file."""
    damaged = golden("backup/INBOX.mbox").replace(b"octets=151", b"octets=149", 1)
    assert damaged != golden("backup/INBOX.mbox")
    assert run(mbox_merge, [str(tmp_path / "copy.mbox")], damaged)[0] == 0
    (tmp_path / "damaged.mbox").write_bytes(damaged)
    status, held = run(mbox_ids, [str(tmp_path / "damaged.mbox")])
    assert status == 0 and held.count(b"\n") == 3 and held.count(b'"uid":null') == 1
    assert ("; kept, as a copy of no message on the server\n" in capsys.readouterr().err)


def test_readers_skip_empty_lines(tmp_path):
    """imapstream(7): readers skip empty lines, in records and between messages."""
    listing = b"\n" + golden("listing.ndjson").replace(b"}\n", b"}\n\n")
    assert run(mbox_ids, ["--missing", "-d", str(tmp_path / "empty")], listing) == (
        0, golden("listing.ndjson"))
    stream = b"\n\n" + golden("stream").replace(b'\n{"folder"', b'\n\n{"folder"')
    assert run(mbox_merge, [str(tmp_path / "all.mbox")], stream)[0] == 0
    assert (tmp_path / "all.mbox").read_bytes() == golden("backup/INBOX.mbox") + golden(
        f"backup/{CAFE_FILE}")
