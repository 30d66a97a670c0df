"""Empty folders are backed up as empty mbox files holding their checkpoints: a run with
nothing new does not examine them again, a restore (imap-append -d) creates them, and a
compressed one is a file its decompressor reads."""

import bz2
import gzip
import lzma
import os

import pytest
from plumbing import run
from test_flags_follow import file_flags

from imapstream import errors
from imapstream.commands import imap_append, imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox import sidecar

FOLDERS = ["Empty", "Full", "Parent/Child", "Parent/Child/Deeper"]
DECOMPRESS = {"none": bytes, "gzip": gzip.decompress, "bzip2": bz2.decompress,
              "xz": lzma.decompress}
SUFFIX = {"none": ".mbox", "gzip": ".mbox.gz", "bzip2": ".mbox.bz2", "xz": ".mbox.xz"}


def backup(directory, compression="none"):
    _s, listed = run(imap_list, ["--all", "-v", "--since", directory])
    _s, missing = run(mbox_ids, ["--missing", "-d", directory], listed)
    _s, stream = run(imap_fetch, [], missing)
    return run(mbox_merge, ["-d", directory, "-z", compression], stream)[0]


@pytest.fixture
def folders(account):
    for folder in FOLDERS:
        account.create_folder(folder)
    account.append("Full", b"Subject: full\r\n\r\nx\r\n")
    return account


@pytest.mark.parametrize("compression", sorted(DECOMPRESS))
def test_an_empty_folder_gets_an_empty_file_with_its_checkpoint(folders, tmp_path, capsys,
                                                                compression):
    directory = str(tmp_path)
    assert backup(directory, compression) == errors.OK
    files = sorted(os.listdir(directory))
    suffix = SUFFIX[compression]
    empty = ["Empty", "INBOX", "Parent.Child", "Parent.Child.Deeper"]  # Parent: \Noselect
    assert [f for f in files if not f.startswith(".")] == sorted(
        [name + suffix for name in empty] + ["Full" + suffix])
    for name in empty:
        path = os.path.join(directory, name + suffix)
        with open(path, "rb") as f:
            data = f.read()
        assert DECOMPRESS[compression](data) == b""
        assert bool(data) == (compression != "none")  # an empty member or stream
        assert list(sidecar.checkpoints(path)) == [name.replace(".", "/")]
    capsys.readouterr()
    assert backup(directory, compression) == errors.OK
    found = sorted(line for line in capsys.readouterr().err.splitlines()
                   if line.startswith("IMAP: Found"))
    assert found == sorted(f"IMAP: Found 0 new messages in {name}"
                           for name in ["INBOX", *FOLDERS])
    assert sorted(os.listdir(directory)) == files


def test_a_restore_creates_the_empty_folders(folders, dovecot, new_user, tmp_path, monkeypatch):
    directory = str(tmp_path)
    assert backup(directory) == errors.OK
    user, _password = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["-d", directory]) == (errors.OK, b"")
    with dovecot.client(user) as client:
        names = {name for _flags, _delimiter, name in client.list_folders()}
        assert names == {"INBOX", "Empty", "Full", "Parent", "Parent/Child",
                         "Parent/Child/Deeper"}
        assert client.folder_status("Full", [b"MESSAGES"])[b"MESSAGES"] == 1
        assert client.folder_status("Empty", [b"MESSAGES"])[b"MESSAGES"] == 0
    assert run(imap_append, ["-d", directory]) == (errors.OK, b"")  # nothing more


def test_no_create_leaves_an_empty_folder_out(folders, dovecot, new_user, tmp_path,
                                              monkeypatch):
    directory = str(tmp_path)
    assert backup(directory) == errors.OK
    os.remove(os.path.join(directory, "Full.mbox"))
    user, _password = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["-d", directory, "--no-create"]) == (errors.OK, b"")
    with dovecot.client(user) as client:
        assert [name for _flags, _delimiter, name in client.list_folders()] == ["INBOX"]


def test_an_empty_file_follows_flags_and_deletions_of_its_first_message(folders, tmp_path):
    """The empty file with its sidecar is a plain file like any other to the flag journal,
    its fold and --prune-deleted: its first message's flag change and deletion reach it,
    and pruning leaves it empty again, its checkpoint kept."""
    directory = str(tmp_path)
    path = os.path.join(directory, "Empty.mbox")
    assert backup(directory) == errors.OK
    assert run(mbox_merge, ["-d", directory, "--prune-deleted"]) == (errors.OK, b"")
    assert os.path.getsize(path) == 0 and list(sidecar.checkpoints(path)) == ["Empty"]
    folders.append("Empty", b"Subject: first\r\n\r\nx\r\n")
    assert backup(directory) == errors.OK
    folders.select_folder("Empty")
    folders.add_flags([1], [b"\\Flagged"])
    assert backup(directory) == errors.OK
    assert file_flags(path) == {1: ["\\Flagged"]}
    folders.delete_messages([1])
    folders.expunge()
    assert backup(directory) == errors.OK
    assert run(mbox_merge, ["-d", directory, "--prune-deleted"]) == (errors.OK, b"")
    assert os.path.getsize(path) == 0 and list(sidecar.checkpoints(path)) == ["Empty"]
