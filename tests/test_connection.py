"""Connection options shared by every IMAP command: server, TLS, password sources."""

import os
import pty
import select
import subprocess
import sys

import pytest
from plumbing import one_line, private_file, run

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


def test_the_command_line_beats_the_environment(login, tmp_path, monkeypatch, capsys):
    """imapstream(7) ENVIRONMENT: --password-file and --password-command come before
    IMAP_PASSWORD, which comes before ~/.netrc."""
    user, password = login
    right = private_file(tmp_path / "right", password + "\n")
    wrong = private_file(tmp_path / "wrong", "wrong\n")
    (tmp_path / ".netrc").write_text(f"machine 127.0.0.1 login {user} password wrong\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("IMAP_PASSWORD", "wrong")
    assert run(imap_list, ["--password-file", str(right)])[0] == errors.OK
    assert run(imap_list, ["--password-command", f"cat {right}"])[0] == errors.OK
    assert run(imap_list, [])[0] == errors.NOPERM
    monkeypatch.setenv("IMAP_PASSWORD", password)
    assert run(imap_list, [])[0] == errors.OK
    assert run(imap_list, ["--password-file", str(wrong)])[0] == errors.NOPERM
    capsys.readouterr()
    assert run(imap_list, ["--password-file", str(right), "--password-command", "x"])[0] \
        == errors.USAGE
    assert "not both" in one_line(capsys)


def test_no_terminal_no_password(login, capsys):
    done = subprocess.run([IMAP_LIST], env=os.environ,
                          capture_output=True, start_new_session=True, timeout=60)
    assert done.returncode == errors.USAGE
    assert done.stderr.decode().startswith("imap-list: no password: set IMAP_PASSWORD")


def _on_a_terminal(answers):
    """Run imap-list on a pty, answering each Password: prompt with the next of answers;
    (exit status, everything it wrote, the number of prompts)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(IMAP_LIST, [IMAP_LIST], os.environ)
    output, prompts = b"", 0
    while True:
        if not select.select([fd], [], [], 30)[0]:
            raise AssertionError(f"no prompt, only {output!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if output.count(b"Password for ") > prompts:
            os.write(fd, answers[prompts].encode() + b"\n")
            prompts += 1
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output, prompts


def test_prompt_on_the_terminal_asks_again_after_a_wrong_password(login):
    """The prompt reads /dev/tty, so stdin stays free for the pipe; a refused password
    is asked again, three times in all."""
    user, password = login
    status, output, prompts = _on_a_terminal(["wrong", "also wrong", password])
    assert (status, prompts) == (0, 3)
    assert output.count(f"imap-list: login as {user} on 127.0.0.1 failed: ".encode()) == 2
    assert output.count(b"try again") == 2
    assert b'"folder":"INBOX"' in output and password.encode() not in output
    status, output, prompts = _on_a_terminal(["wrong"] * 3)
    assert (status, prompts) == (errors.NOPERM, 3)
    last = output.rstrip().splitlines()[-1]
    assert output.count(b"try again") == 2
    assert b"imap-list: login as " in last and b"try again" not in last


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
