"""Connection options shared by every IMAP command: server, TLS, password sources."""

import os
import pty
import select
import subprocess
import sys

import pytest
from plumbing import run

from imapstream import errors
from imapstream.commands import imap_list
from imapstream.imap.connection import server_address

IMAP_LIST = os.path.join(os.path.dirname(sys.executable), "imap-list")


def test_server_address():
    assert server_address("imap.example.com", None) == ("imap.example.com", 993, "imaps")
    assert server_address("imap.example.com:143", None) == ("imap.example.com", 143, "starttls")
    assert server_address("h", "starttls") == ("h", 143, "starttls")
    assert server_address("[::1]:1993", "imaps") == ("::1", 1993, "imaps")
    for bad in ("h:0", "h:x", "h:70000"):
        with pytest.raises(errors.UsageError):
            server_address(bad, None)
    with pytest.raises(errors.UsageError, match="IMAP_SERVER"):
        server_address(None, None)


@pytest.fixture
def login(dovecot, new_user, monkeypatch, tmp_path):
    user, password = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("IMAP_PASSWORD")
    monkeypatch.setenv("HOME", str(tmp_path))
    return user, password


def test_password_file_and_command(login, tmp_path, capsys):
    _user, password = login
    secret = tmp_path / "secret"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    assert run(imap_list, ["--password-file", str(secret)])[0] == errors.OK
    command = f"{sys.executable} -c 'print(\"{password}\")'"
    assert run(imap_list, ["--password-command", command])[0] == errors.OK
    assert run(imap_list, ["--password-command", "false"])[0] == errors.NOPERM
    assert "--password-command exited with status 1" in capsys.readouterr().err


def test_netrc(login, tmp_path):
    user, password = login
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {user} password {password}\n")
    netrc.chmod(0o600)
    assert run(imap_list, [])[0] == errors.OK


def test_environment_wins(login, tmp_path, monkeypatch):
    _user, password = login
    (tmp_path / "wrong").write_text("wrong\n")
    monkeypatch.setenv("IMAP_PASSWORD", password)
    assert run(imap_list, ["--password-file", str(tmp_path / "wrong")])[0] == errors.OK


def test_no_terminal_no_password(login, capsys):
    done = subprocess.run([IMAP_LIST], env=os.environ,
                          capture_output=True, start_new_session=True, timeout=60)
    assert done.returncode == errors.USAGE
    assert done.stderr.decode().startswith("imap-list: no password: set IMAP_PASSWORD")


def test_prompt_on_the_terminal(login):
    """The prompt reads /dev/tty, so stdin stays free for the pipe."""
    _user, password = login
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(IMAP_LIST, [IMAP_LIST], os.environ)
    seen = b""
    while b"Password" not in seen:
        assert select.select([fd], [], [], 30)[0], f"no prompt, only {seen!r}"
        seen += os.read(fd, 1024)
    os.write(fd, password.encode() + b"\n")
    output = b""
    try:
        while chunk := os.read(fd, 4096):
            output += chunk
    except OSError:
        pass
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b'"folder":"INBOX"' in output and password.encode() not in output


def test_folder_selection(dovecot, new_user, monkeypatch):
    user, _ = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    client = dovecot.client(user)
    for name in ("Archive/2005", "Archive/2006", "Spam"):
        client.create_folder(name)
    names = lambda out: sorted(line.split(b'"')[3].decode() for line in out.splitlines())  # noqa: E731
    assert names(run(imap_list, ["--include", "^Archive/"])[1]) == ["Archive/2005",
                                                                   "Archive/2006"]
    assert "Spam" not in names(run(imap_list, ["--exclude", "Spam"])[1])
    assert run(imap_list, ["--include", "("])[0] == errors.USAGE
    client.append("Spam", b"Subject: s\r\n\r\nx\r\n")
    listed = run(imap_list, ["-"], b'Spam\n{"folder":"Archive/2005"}\n')[1]
    assert listed.count(b'"folder":"Spam"') == 1 and listed.count(b"\n") == 1
    assert run(imap_list, ["-"], b"{oops\n")[0] == errors.DATAERR
