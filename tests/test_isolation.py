"""One bad thing stops only itself: a file that cannot be read or written fails its
folder alone, with one line on stderr, and every other folder gets its mail."""

import gzip
import re
import resource
import signal
import subprocess

import pytest
from conftest import REPO, command_env
from plumbing import AWKWARD, append_all, backup, backup_messages, run, server_messages
from test_readme import EXAMPLES

from imapstream import errors
from imapstream.commands import imap_append, mbox_ids, mbox_merge
from imapstream.mbox.reader import scan
from imapstream.message import to_lf

BIG = b"Subject: big\r\nMessage-ID: <big@x>\r\n\r\n" + b"z" * 78 + b"\r\n" * 2000


def held_in(path):
    return sorted((data, sorted(record["flags"])) for _o, record, data in scan(str(path)))


@pytest.fixture
def size_limit():
    """set(n): writes past byte n of any file fail with EFBIG (as on FAT32 at 4 GiB)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    yield lambda limit: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    signal.signal(signal.SIGXFSZ, old)


def test_a_file_that_cannot_be_written_fails_its_folder_alone(account, tmp_path, capsys,
                                                               size_limit):
    for folder in ("A", "B", "C", "Z"):
        account.create_folder(folder)
        append_all(account, folder, AWKWARD[:2])
    append_all(account, "C", [BIG])
    backup(str(tmp_path))
    for folder in ("INBOX", "A", "B", "C", "Z"):
        append_all(account, folder, AWKWARD[2:5])
    elsewhere = tmp_path / "elsewhere.mbox"
    (tmp_path / "A.mbox").rename(elsewhere)
    (tmp_path / "A.mbox").symlink_to(elsewhere)  # ELOOP: never appended through
    (tmp_path / "B.mbox").unlink()
    (tmp_path / "B.mbox").mkdir()  # EISDIR
    c_before = (tmp_path / "C.mbox").read_bytes()
    capsys.readouterr()
    size_limit(len(c_before) + 100)  # EFBIG for C alone, INBOX and Z are small
    try:
        statuses, _, _ = backup(str(tmp_path))
    finally:
        size_limit(resource.RLIM_INFINITY)
    err = sorted(line for line in capsys.readouterr().err.splitlines()
                 if not line.startswith("APPEND: "))
    assert statuses == (errors.OK, errors.PARTIAL, errors.OK, errors.PARTIAL), err
    assert err == [
        f"mbox-ids: {tmp_path}/B.mbox: Is a directory; its folder's records are held back",
        f"mbox-merge: {tmp_path}/A.mbox: Too many levels of symbolic links; its messages "
        f"are skipped",
        f"mbox-merge: {tmp_path}/C.mbox: File too large; its messages are skipped"]
    assert (tmp_path / "C.mbox").read_bytes() == c_before
    server = server_messages(account)
    for folder in ("INBOX", "Z"):
        assert held_in(tmp_path / f"{folder}.mbox") == server[folder]
    assert len(held_in(tmp_path / "C.mbox")) == 3
    # Repaired, a rerun completes every folder.
    (tmp_path / "A.mbox").unlink()
    elsewhere.rename(tmp_path / "A.mbox")
    (tmp_path / "B.mbox").rmdir()
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0), capsys.readouterr().err
    assert backup_messages(str(tmp_path)) == server_messages(account)


def test_mbox_ids_lists_the_files_it_can_read(tmp_path, capsys):
    (tmp_path / "A.mbox").mkdir()
    (tmp_path / "B.mbox").symlink_to("B.mbox")
    (tmp_path / "C.mbox").write_bytes(b"From x Sat Jul  1 10:00:00 2005\nSubject: c\n\nc\n\n")
    status, out = run(mbox_ids, ["-d", str(tmp_path)])
    assert status == errors.PARTIAL
    assert out.count(b"\n") == 1 and b'"file":"%s' % str(tmp_path).encode() in out
    err = capsys.readouterr().err.splitlines()
    assert err == [f"mbox-ids: {tmp_path}/A.mbox: Is a directory",
                   f"mbox-ids: {tmp_path}/B.mbox: Too many levels of symbolic links"]
    assert run(mbox_ids, ["--folders", str(tmp_path / "none.mbox"), str(tmp_path / "C.mbox")]
               ) == (errors.PARTIAL, b"")
    assert capsys.readouterr().err == \
        f"mbox-ids: {tmp_path}/none.mbox: No such file or directory\n"


def test_imap_append_restores_the_files_it_can_read(account, tmp_path, capsys, dovecot,
                                                    new_user, monkeypatch):
    account.create_folder("Z")
    append_all(account, "Z", AWKWARD[:3])
    backup(str(tmp_path))
    (tmp_path / "A.mbox").mkdir()
    (tmp_path / "B.mbox").symlink_to("B.mbox")
    capsys.readouterr()
    user, _ = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["-d", str(tmp_path)])[0] == errors.PARTIAL
    assert capsys.readouterr().err.splitlines() == [
        f"imap-append: {tmp_path}/A.mbox: Is a directory",
        f"imap-append: {tmp_path}/B.mbox: Too many levels of symbolic links"]
    with dovecot.client(user) as client:
        assert server_messages(client)["Z"] == held_in(tmp_path / "Z.mbox")


COPY = b"Subject: copy\r\nMessage-ID: <copy@x>\r\n\r\n" + b"the same bytes\r\n" * 600


def _man_example(page, needle):
    """The literal block of a man page that contains needle, as the shell reads it."""
    text = (REPO / "man" / page).read_text()
    for block in re.findall(r"\.Bd -literal -offset indent\n(.*?)\.Ed", text, re.S):
        if needle in block:
            return block.replace("\\e", "\\")
    raise AssertionError(f"no example with {needle} in {page}")


@pytest.mark.parametrize("example", ["README flagged", "imapstream(7) big"])
def test_a_copy_in_another_folder_is_stored_again(dovecot, new_user, tmp_path, program,
                                                  example):
    """The examples that merge every folder into one mbox: an identical message that
    reaches a second folder after the first was stored is stored again, so the file
    holds as many copies as the server; reruns add nothing."""
    program("jq")
    if example == "README flagged":
        script, target = EXAMPLES["flagged"], tmp_path / "flagged.mbox"
    else:
        script = _man_example("imapstream.7", "big.mbox").replace("10000000", "9000")
        target = tmp_path / "big.mbox"
    user, _ = new_user("fs")
    env = command_env(dovecot, user, tmp_path)
    with dovecot.client(user) as client:
        append_all(client, "INBOX", AWKWARD[:3])
        client.create_folder("Archive")
        client.append("INBOX", COPY, flags=[b"\\Flagged"])
        sh(script, env, tmp_path)
        assert [data for _o, _r, data in scan(str(target))] == [to_lf(COPY)]
        client.append("Archive", COPY, flags=[b"\\Flagged"])
    sh(script, env, tmp_path)
    once = target.read_bytes()
    sh(script, env, tmp_path)
    assert target.read_bytes() == once
    held = [(record["folder"], data) for _o, record, data in scan(str(target))]
    assert held == [("INBOX", to_lf(COPY)), ("Archive", to_lf(COPY))]


def sh(script, env, cwd):
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", [8, 3])
def test_a_gzip_member_missing_its_trailer_keeps_its_messages(account, tmp_path, capsys,
                                                              program, missing):
    """gzip -dc reads every message of a last member that lacks (part of) its trailer:
    so do mbox-ids and mbox-merge, which completes the trailer instead of cutting the
    member, so that the messages no longer on the server stay in the backup."""
    append_all(account, "INBOX", AWKWARD[:4])
    backup(str(tmp_path), "-z", "gzip")
    append_all(account, "INBOX", AWKWARD[4:])
    backup(str(tmp_path))
    path = tmp_path / "INBOX.mbox.gz"
    whole = path.read_bytes()
    expected = backup_messages(str(tmp_path))
    path.write_bytes(whole[:-missing])
    (tmp_path / ".INBOX.mbox.gz.ids").unlink()
    account.select_folder("INBOX")
    account.delete_messages(account.search(["NOT", "UID", "1:4"]))
    account.expunge()
    capsys.readouterr()
    status, out = run(mbox_ids, [str(path)])
    assert status == errors.DATAERR
    assert out.count(b"\n") == len(AWKWARD)
    assert capsys.readouterr().err == (f"mbox-ids: {path}: the last gzip member lacks its "
                                       f"trailer; the next mbox-merge completes it\n")
    append_all(account, "INBOX", [COPY])  # the next mbox-merge to append repairs it
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    assert capsys.readouterr().err.splitlines()[0] == (
        f"mbox-merge: {path}: completed the trailer of its last gzip member")
    assert path.read_bytes().startswith(whole)
    expected["INBOX"] = sorted(expected["INBOX"] + [(to_lf(COPY), [])])
    assert backup_messages(str(tmp_path)) == expected
    done = subprocess.run([program("gzip"), "-tv", str(path)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr


def test_a_new_uidvalidity_with_one_more_copy_stores_it(account, tmp_path):
    """After a UIDVALIDITY change the folder holds two identical copies where the backup
    held one: mbox-ids matches one by its record, so mbox-merge must not match the
    other by its bytes against that same held copy."""
    account.create_folder("F")
    append_all(account, "F", [COPY])
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    account.delete_folder("F")
    account.create_folder("F")
    append_all(account, "F", [COPY, COPY])
    statuses, missing, _ = backup(str(tmp_path))
    assert statuses == (0, 0, 0, 0)
    assert missing.count(b"\n") == 1  # the held copy is not fetched again
    assert [data for _o, _r, data in scan(str(tmp_path / "F.mbox"))] == [to_lf(COPY)] * 2
    assert backup(str(tmp_path))[1] == b""


@pytest.mark.parametrize("missing", [8, 1])
def test_gzip_input_missing_its_trailer_gives_every_message(tmp_path, capsys, missing):
    """An mbox.gz on standard input that gzip -dc reads whole but for its trailer: every
    message is stored, then exit 65 says what was wrong; a rerun with the whole file
    adds nothing."""
    mbox = b"".join(b"From a@b Sat Jul  1 10:00:00 2005\nSubject: %d\n\n>From x\n\n" % n
                    for n in range(30))
    whole = gzip.compress(mbox[:700]) + gzip.compress(mbox[700:])
    target = tmp_path / "in.mbox"
    assert run(mbox_merge, [str(target)], whole[:-missing])[0] == errors.DATAERR
    assert capsys.readouterr().err.splitlines()[-1] == (
        "mbox-merge: standard input: the last gzip member lacks its trailer (its messages "
        "were read)")
    held = [(record["flags"], data) for _o, record, data in scan(str(target))]
    assert held == [([], b"Subject: %d\n\nFrom x\n" % n) for n in range(30)]
    once = target.read_bytes()
    assert run(mbox_merge, [str(target)], whole)[0] == errors.OK
    assert target.read_bytes() == once
    bad = whole[:-4] + bytes([whole[-4] ^ 1]) + whole[-3:]  # a wrong length is damage
    assert run(mbox_merge, [str(target)], bad)[0] == errors.DATAERR
    assert "does not match its data" in capsys.readouterr().err
