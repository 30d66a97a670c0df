"""Secrets and files: password sources that refuse to leak; a password or token never in
any process's argv while a backup runs, in a log, a record or an error message; backup
files private, and a symlink planted in the backup directory never followed."""

import logging
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from plumbing import AWKWARD, append_all, backup, one_line, private_file, run

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_merge
from imapstream.imap import auth

ROOT = Path(__file__).resolve().parent.parent
BIN = os.path.dirname(sys.executable)




# -- password sources ----------------------------------------------------------------------


@pytest.fixture
def no_password(account, monkeypatch, tmp_path):
    password = os.environ["IMAP_PASSWORD"]
    monkeypatch.delenv("IMAP_PASSWORD")
    monkeypatch.setenv("HOME", str(tmp_path))
    return password


def test_a_password_file_others_can_read_is_refused(no_password, tmp_path, capsys):
    secret = tmp_path / "secret"
    secret.write_text(no_password + "\n")
    for mode in (0o644, 0o640, 0o604):
        secret.chmod(mode)
        assert run(imap_list, ["--password-file", str(secret)])[0] == errors.USAGE
        assert (f"--password-file {secret}: group or others can read it (mode {mode:04o}); "
                f"make it private with chmod 600") in one_line(capsys)
    for mode in (0o600, 0o400):
        secret.chmod(mode)
        assert run(imap_list, ["--password-file", str(secret)])[0] == errors.OK


def test_a_netrc_others_can_read_is_named(no_password, tmp_path, capsys):
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {os.environ['IMAP_USER']} password "
                     f"{no_password}\n")
    netrc.chmod(0o644)
    assert run(imap_list, [])[0] == errors.USAGE
    err = one_line(capsys)
    assert "imap-list: ~/.netrc: " in err and "permissions" in err and no_password not in err


# -- secrets never shown -------------------------------------------------------------------


class CommandLines:
    """Reads every process's argv from /proc, again and again, until stopped."""

    def __init__(self):
        self.seen, self.passes, self.done = set(), 0, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self):
        while not self.done.is_set():
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        self.seen.add(f.read())
                except OSError:
                    pass
            self.passes += 1

    def stop(self):
        self.done.set()
        self.thread.join()
        return self.seen


def test_no_secret_in_any_command_line_while_a_backup_runs(dovecot, account, tmp_path):
    for folder in ("Archive", "Archive/2005"):
        account.create_folder(folder)
        append_all(account, folder, AWKWARD * 8)
    append_all(account, "INBOX", AWKWARD * 16)
    user, password = os.environ["IMAP_USER"], os.environ["IMAP_PASSWORD"]
    token = dovecot.oauth2_token(user)
    token_file = private_file(tmp_path / "token", token)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               TOKEN_FILE=str(token_file), DIR=str(tmp_path / "oauth"))
    watch = CommandLines()
    try:
        done = [subprocess.run([ROOT / "bin" / "imapbackup", "-d", tmp_path / "imapbackup", "-j",
                                "2", "--nospinner"], env=env, capture_output=True, timeout=120)]
        del env["IMAP_PASSWORD"]
        done.append(subprocess.run(
            ["sh", "-c", 'imap-list --all --oauth2-token-command "cat $TOKEN_FILE" | '
                         'imap-fetch --no-progress --oauth2-token-command "cat $TOKEN_FILE" | '
                         'mbox-merge -d "$DIR"'], env=env, capture_output=True, timeout=120))
    finally:
        seen = watch.stop()
    assert [d.returncode for d in done] == [0, 0], [d.stderr for d in done]
    for program in (b"imapbackup", b"imap-list", b"mbox-ids", b"imap-fetch", b"mbox-merge"):
        assert any(program in line for line in seen), (program, watch.passes)
    for value in (password.encode(), token.encode()):
        assert not [line for line in seen if value in line]
        assert not [d for d in done if value in d.stdout + d.stderr]
        for path in tmp_path.rglob("*.mbox"):
            assert value not in path.read_bytes()


def test_an_internal_error_does_not_show_the_password(account, monkeypatch, capsys):
    password = os.environ["IMAP_PASSWORD"]

    def broken(client, mechanism, user, secret, host, port):
        raise ValueError(f"cannot log in as {user} with {secret!r}")

    monkeypatch.setattr(auth, "log_in", broken)
    assert run(imap_list, [])[0] == errors.SOFTWARE
    err = one_line(capsys)
    assert "internal error: ValueError: cannot log in as" in err and "'***'" in err
    assert password not in err
    code = ("from imapstream.commands import imap_list\n"
            "from imapstream.imap import auth\n"
            "def broken(*args): raise RuntimeError(repr(args))\n"
            "auth.log_in = broken\n"
            "imap_list.run()\n")
    done = subprocess.run([sys.executable, "-c", code], env=os.environ, capture_output=True,
                          timeout=60)
    assert done.returncode == errors.SOFTWARE
    assert done.stderr.startswith(b"imap-list: internal error: RuntimeError: ")
    assert done.stderr.count(b"\n") == 1 and password.encode() not in done.stderr


def test_no_secret_in_logs_or_records(dovecot, account, monkeypatch, tmp_path, caplog):
    """With every logger at DEBUG (imapclient and imaplib log each command then)."""
    append_all(account, "INBOX", AWKWARD[:2])
    user, password = os.environ["IMAP_USER"], os.environ["IMAP_PASSWORD"]
    token = dovecot.oauth2_token(user)
    command = ["--oauth2-token-command", f"cat {private_file(tmp_path / 'token', token)}"]
    caplog.set_level(logging.DEBUG)
    outputs = []
    for argv in (["--auth", "login"], ["--auth", "plain"], ["--auth", "cram-md5"],
                 [*command, "--auth", "xoauth2"], command):
        status, listed = run(imap_list, ["INBOX", *argv])
        assert status == errors.OK
        outputs += [listed, run(imap_fetch, argv, listed)[1]]
    assert "LOGIN" in caplog.text and "AUTHENTICATE" in caplog.text  # it was logging
    for value in (password, token):
        assert value not in caplog.text
        assert not [out for out in outputs if value.encode() in out]


def test_backup_files_are_private_and_keep_their_mode(account, tmp_path):
    append_all(account, "INBOX", AWKWARD[:3])
    directory = tmp_path / "backup"
    umask = os.umask(0)  # the modes must not depend on the umask
    try:
        assert backup(str(directory))[0] == (0, 0, 0, 0)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert files and {p.name: stat.S_IMODE(p.lstat().st_mode) for p in files} == {
        p.name: 0o600 for p in files}
    inbox = directory / "INBOX.mbox"
    inbox.chmod(0o640)
    append_all(account, "INBOX", AWKWARD[3:5])
    assert backup(str(directory))[0] == (0, 0, 0, 0)
    assert stat.S_IMODE(inbox.stat().st_mode) == 0o640


def test_a_planted_symlink_is_not_followed(account, tmp_path, capsys):
    account.create_folder("Planted")
    append_all(account, "Planted", AWKWARD[:2])
    directory = tmp_path / "backup"
    directory.mkdir(mode=0o700)
    target = tmp_path / "elsewhere"
    target.write_bytes(b"not yours\n")
    (directory / "Planted.mbox").symlink_to(target)
    _, listed = run(imap_list, ["Planted"])
    _, stream = run(imap_fetch, [], listed)
    status, _ = run(mbox_merge, ["-d", str(directory)], stream)
    assert status == errors.PARTIAL  # that folder alone fails
    assert "Planted.mbox: Too many levels of symbolic links" in one_line(capsys, "mbox-merge")
    assert target.read_bytes() == b"not yours\n" and (directory / "Planted.mbox").is_symlink()
