"""Compressed backups, and merging plain mbox files into a backup."""

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys

import pytest
from plumbing import AWKWARD, append_all, backup, backup_messages, run, server_messages

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox import append
from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.stream import write_message

OPENERS = {"gzip": (gzip.open, ".mbox.gz", "zcat"), "bzip2": (bz2.open, ".mbox.bz2", "bzcat"),
           "xz": (lzma.open, ".mbox.xz", "xzcat")}




@pytest.mark.parametrize("compression", sorted(OPENERS))
def test_compressed_files_are_read_and_appended(account, tmp_path, compression):
    opener, suffix, cat = OPENERS[compression]
    append_all(account, "INBOX", AWKWARD[:5])
    assert backup(str(tmp_path), "-z", compression)[0] == (0, 0, 0, 0)
    path = tmp_path / ("INBOX" + suffix)
    first_size = path.stat().st_size
    append_all(account, "INBOX", AWKWARD[5:])
    assert backup(str(tmp_path))[1].count(b"\n") == len(AWKWARD) - 5  # keeps its compression
    assert path.stat().st_size > first_size
    assert mbox_files(str(tmp_path)) == [str(path)]
    assert backup_messages(str(tmp_path)) == server_messages(account)
    assert backup(str(tmp_path))[1] == b""
    # A new member or stream per append: the standard tools read the whole file.
    with opener(path, "rb") as f:
        whole = f.read()
    if subprocess.run(["which", cat], capture_output=True).returncode == 0:
        assert subprocess.run([cat, str(path)], capture_output=True).stdout == whole
    assert whole.count(b"\nX-Imapstream: ") + whole.startswith(b"X-Imap") == len(AWKWARD)


def test_plain_mbox_input_never_doubles(account, tmp_path):
    append_all(account, "INBOX", AWKWARD)
    _, mbox = run(imap_fetch, ["--mbox"], run(imap_list, ["INBOX"])[1])
    target = str(tmp_path / "merged.mbox")
    assert run(mbox_merge, [target], mbox)[0] == 0
    size = (tmp_path / "merged.mbox").stat().st_size
    assert run(mbox_merge, [target], mbox)[0] == 0  # the same mbox again adds nothing
    assert (tmp_path / "merged.mbox").stat().st_size == size
    # A foreign mbox (as mutt writes it) with two identical copies keeps both, once.
    foreign = (b"From a@b Sat Jul  1 10:00:00 2005\nSubject: dup\nStatus: RO\n\nsame\n\n") * 2
    run(mbox_merge, [target], foreign)
    run(mbox_merge, [target], foreign)
    _, held = run(mbox_ids, [target])
    assert held.count(b"\n") == len(AWKWARD) + 2
    assert held.count(b'"flags":["\\\\Seen"]') >= 2


def test_files_and_directories_are_private(account, tmp_path):
    append_all(account, "INBOX", AWKWARD[:1])
    backup(str(tmp_path / "new" / "backup"))
    assert (tmp_path / "new" / "backup").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "new" / "backup" / "INBOX.mbox").stat().st_mode & 0o777 == 0o600


def test_folders_sharing_a_uidvalidity_in_one_file(tmp_path):
    """Servers may reuse a UIDVALIDITY across folders: the folder tells them apart."""
    stream = io.BytesIO()
    for folder in ("Sent", "Drafts"):
        for uid in (1, 2, 3):
            write_message(stream, {"folder": folder, "delimiter": "/", "uidvalidity": 777,
                                   "uid": uid}, b"Subject: %s %d\r\n\r\nx\r\n" % (
                                       folder.encode(), uid))
    target = str(tmp_path / "both.mbox")
    for _ in range(2):
        assert run(mbox_merge, [target], stream.getvalue())[0] == 0
        assert run(mbox_ids, [target])[1].count(b"\n") == 6
    records = b"".join(line.split(b',"length"')[0] + b"}\n"
                       for line in stream.getvalue().split(b"\n") if line.startswith(b"{"))
    assert run(mbox_ids, ["--missing", target], records)[1] == b""


def test_appending_after_a_last_line_without_newline(tmp_path):
    target = tmp_path / "theirs.mbox"
    target.write_bytes(b"From a@b Sat Jul  1 10:00:00 2005\nSubject: old\n\nno newline at the end")
    stream = io.BytesIO()
    write_message(stream, {"folder": "INBOX", "uidvalidity": 1, "uid": 1},
                  b"Subject: new\r\n\r\nbody\r\n")
    assert run(mbox_merge, [str(target)], stream.getvalue())[0] == 0
    _, held = run(mbox_ids, [str(target)])
    assert held.count(b"\n") == 2


@pytest.mark.parametrize("compressor", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_standard_input(tmp_path, compressor):
    foreign = b"\n" + b"From a@b Sat Jul  1 10:00:00 2005\nSubject: one\n\nx\n\n" * 2
    target = str(tmp_path / "in.mbox")
    assert run(mbox_merge, [target], compressor(foreign))[0] == 0
    assert run(mbox_ids, [target])[1].count(b"\n") == 2
    assert run(mbox_merge, [target], compressor(foreign)[:-6])[0] == errors.DATAERR


@pytest.mark.parametrize("suffix, kind", [(".gz", gzip.GzipFile), (".bz2", bz2.BZ2File),
                                          (".xz", lzma.LZMAFile)])
def test_a_big_message_reaches_the_compressor_in_pieces(tmp_path, monkeypatch, suffix, kind):
    body = b"".join(b"From line %d\r\n" % n if n % 997 == 0 else b"x" * 70 + b"\r\n"
                    for n in range(60_000))
    data = b"Subject: big\r\n\r\n" + body
    stream = io.BytesIO()
    write_message(stream, {"folder": "INBOX", "uidvalidity": 1, "uid": 1}, data)
    sizes, write = [], kind.write
    monkeypatch.setattr(kind, "write", lambda self, piece: sizes.append(len(piece))
                        or write(self, piece))
    target = tmp_path / f"big.mbox{suffix}"
    assert run(mbox_merge, [str(target)], stream.getvalue())[0] == 0
    assert sum(sizes) > 3 * append.PIECE
    assert max(sizes) <= append.PIECE
    [(_offset, _record, held)] = scan(str(target))
    assert held == to_lf(data)


def test_merge_json_names_each_files_folder_and_counts_the_folders(tmp_path):
    body = b"Subject: x\r\n\r\nbody\r\n"
    message = (b'{"folder":"a.b","delimiter":"/","uidvalidity":1,"uid":1,"message_id":null,'
               b'"size":20,"flags":[],"internaldate":null,"length":20}\n' + body + b"\n")
    checkpoints = b"".join(
        b'{"folder":"%s","delimiter":"/","uidvalidity":1,"uidnext":%d,"messages":%d,'
        b'"since":null,"checkpoint":true}\n' % (name, uidnext, uidnext - 1)
        for name, uidnext in ((b"a.b", 2), (b"Empty", 1)))
    status, out = run(mbox_merge, ["-d", str(tmp_path), "--json"], message + checkpoints)
    assert status == 0
    path = tmp_path / "a%2Eb.mbox"
    assert out == (b'{"file":"%s","folder":"a.b","delimiter":"/","messages":1,"bytes":%d,'
                   b'"largest":17}\n{"folders":2,"failed":[]}\n'
                   % (str(path).encode(), path.stat().st_size))


def test_merge_json_names_the_folders_that_failed(tmp_path):
    """Sent lost a message on the way ("failed": true), Dir's file is a directory."""
    body = b"Subject: x\r\n\r\nbody\r\n"
    stream = b"".join(
        b'{"folder":"%s","delimiter":"/","uidvalidity":1,"uid":1,"message_id":null,'
        b'"size":20,"flags":[],"internaldate":null,"length":20}\n%s\n'
        b'{"folder":"%s","delimiter":"/","uidvalidity":1,"uidnext":3,"messages":2,'
        b'"since":null,"checkpoint":%s}\n' % (name, body, name, vouches)
        for name, vouches in ((b"Sent", b'false,"failed":true'), (b"Dir", b"true"),
                              (b"INBOX", b"true")))
    (tmp_path / "Dir.mbox").mkdir()
    merge = os.path.join(os.path.dirname(sys.executable), "mbox-merge")
    done = subprocess.run([merge, "-d", str(tmp_path), "--json"], input=stream,
                          capture_output=True, check=False)
    assert done.returncode == errors.PARTIAL
    assert b"\nmbox-merge: %s: Is a directory; its messages are skipped\n" % (
        str(tmp_path / "Dir.mbox").encode()) in done.stderr
    sent, inbox = tmp_path / "Sent.mbox", tmp_path / "INBOX.mbox"
    assert done.stdout == (
        b'{"file":"%s","folder":"Sent","delimiter":"/","messages":1,"bytes":%d,"largest":17}\n'
        b'{"file":"%s","folder":"INBOX","delimiter":"/","messages":1,"bytes":%d,"largest":17}\n'
        b'{"folders":3,"failed":["Dir","Sent"]}\n'
        % (str(sent).encode(), sent.stat().st_size, str(inbox).encode(), inbox.stat().st_size))
