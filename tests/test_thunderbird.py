"""--thunderbird's tree (mbox-merge --thunderbird): the files of a backup directory as
Thunderbird's local folders, hard links in .sbd directories, each part of a folder name
the file name Thunderbird itself gives it.  The expected names are those of
Thunderbird's own test of NS_MsgHashIfNecessary (comm-central,
TestMsgHashIfNecessary.cpp)."""

import os

import orjson
import pytest
from conftest import command_env
from plumbing import run
from test_imapbackup import imapbackup

from imapstream import errors
from imapstream.commands import mbox_merge
from imapstream.mbox.thunderbird import leaf_name


@pytest.mark.parametrize(("part", "name"), [
    ("test", "test"),
    ("test ?", "test 44d67da4"),
    ("?", "bd0bf74a"),
    (".test", "41a1a959"),
    ("test.", "test4fe8d9d9"),
    ("test~", "test7ddbdda9"),
    ("test ", "testdb1185fb"),
    ("test TEST test TEST test TEST test TEST test TEST test TEST",
     "test TEST test TEST test TEST test TEST test TEa2bbf4d7"),
    ("1234567890 1234567890 1234567890 1234567890 1234567890: tail",
     "1234567890 1234567890 1234567890 1234567890 123870c44d6"),
    ("test π", "test π"),
    ("~tilde", "~tilde"),
    ("100% done", "100% done"),
])
def test_parts_are_named_as_thunderbird_names_them(part, name):
    assert leaf_name(part) == name


def test_a_name_is_never_cut_inside_a_surrogate_pair():
    part = "x" * 46 + "😀" + "y" * 10  # the pair is code units 47 and 48
    assert leaf_name(part) == "x" * 46 + leaf_name(part)[-8:]


def test_the_tree_shows_every_folder_to_thunderbird(dovecot, new_user, tmp_path):
    """Names Thunderbird would pass over as files (a trailing '~', a leading '.' or
    '#') or could not make (':', '?', ';') are named as Thunderbird names them; the
    others, a leading '~' or a '%' among them, as they are."""
    user, _ = new_user("maildir++")
    client = dovecot.client(user)
    for folder in ("INBOX.~tilde", "INBOX.Notes~", "INBOX.Q: why?", "INBOX.a;b",
                   "INBOX.100% done"):
        client.create_folder(folder)
        client.append(folder, b"Subject: %s\r\n\r\nx\r\n" % folder.encode())
    done = imapbackup(command_env(dovecot, user), "-d", tmp_path, "--thunderbird")
    assert done.returncode == 0, done.stderr
    tree = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
            if ".flat" not in p.parts and p.is_file()}
    assert tree == {"INBOX", "INBOX.sbd/~tilde", f"INBOX.sbd/Notes{leaf_name('Notes~')[-8:]}",
                    f"INBOX.sbd/Q{leaf_name('Q: why?')[-8:]}",
                    f"INBOX.sbd/a{leaf_name('a;b')[-8:]}", "INBOX.sbd/100% done"}
    assert (tmp_path / "INBOX.sbd" / "~tilde").stat().st_ino == (
        tmp_path / ".flat" / "INBOX.%7Etilde.mbox").stat().st_ino


def test_each_file_is_linked_under_its_folder_s_parts(tmp_path):
    """Parts are split at each record's delimiter; "a/b", ".." and "n\\0ul" are hashed
    ("a" + 72130ad9, 39070bc1, "n" + 50e80650)."""
    store, top = tmp_path / "flat", tmp_path / "top"
    store.mkdir()
    top.mkdir()
    records = [{"file": f"elsewhere/{name}", "folder": folder, "delimiter": delimiter}
               for name, folder, delimiter in (
                   ("Lists.a%2Fb.mbox", "Lists.a/b", "."), ("x.%2E%2E.mbox", "x/..", "/"),
                   ("n%00ul.mbox", "n\0ul", None), ("x.%2E%2E.mbox", "ignored", None))]
    for name in {os.path.basename(record["file"]) for record in records}:
        (store / name).write_bytes(name.encode())
    (top / "Lists").write_bytes(b"Thunderbird's own")  # a parent's file stays as it is
    stdin = b"".join(orjson.dumps(r) + b"\n" for r in records) + b'{"folders":3,"failed":[]}\n'
    assert run(mbox_merge, ["-d", str(store), "--thunderbird", str(top)], stdin) == (0, b"")
    tree = {str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file()}
    assert tree == {"Lists": b"Thunderbird's own", "Lists.sbd/a72130ad9": b"Lists.a%2Fb.mbox",
                    "x": b"", "x.sbd/39070bc1": b"x.%2E%2E.mbox", "n50e80650": b"n%00ul.mbox"}
    assert (top / "x").stat().st_mode & 0o777 == 0o600
    assert (top / "x.sbd").stat().st_mode & 0o777 == 0o700
    (store / "n%00ul.mbox").unlink()
    (store / "n%00ul.mbox").write_bytes(b"a new file")
    assert run(mbox_merge, ["-d", str(store), "--thunderbird", str(top)], stdin)[0] == 0
    assert os.path.samefile(top / "n50e80650", store / "n%00ul.mbox")
    assert sorted(os.listdir(top)) == ["Lists", "Lists.sbd", "n50e80650", "x", "x.sbd"]
    assert run(mbox_merge, ["x.mbox", "--thunderbird", str(top)], stdin)[0] == errors.USAGE
