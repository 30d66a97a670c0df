"""imapbackup from a user's first hour: the command lines of the original imapbackup,
folders chosen by name (INBOX in any case, escaped commas, typos), its one-line errors,
the password prompt asked again, and --check."""

import json
import os
import pty
import select
import shutil
import subprocess

import pytest
from conftest import REPO, command_env
from test_client_certificate import strict_server  # noqa: F401 (the fixture, shared)

IMAPBACKUP = str(REPO / "bin" / "imapbackup")
FOLDERS = {"INBOX": 2, "Receipts, 2024": 1, "Personal": 1}


@pytest.fixture(scope="module")
def small_account(dovecot, tmp_path_factory):
    """A user whose password starts with @, with a few messages in FOLDERS; the
    environment without IMAP_PASSWORD, and the password."""
    user, password = f"orig{os.getpid()}", "@t-secret"
    dovecot.add_user(user, password, "maildir:~/Maildir:LAYOUT=fs")
    with dovecot.client(user) as client:
        for folder, count in FOLDERS.items():
            if folder != "INBOX":
                client.create_folder(folder)
            for number in range(count):
                client.append(folder, f"Subject: {folder} {number}\r\n\r\nbody\r\n".encode())
    env = command_env(dovecot, user, tmp_path_factory.mktemp("home"))
    del env["IMAP_PASSWORD"]
    return env, password


def imapbackup(env, *argv, cwd=None):
    return subprocess.run([IMAPBACKUP, *map(str, argv)], env=env, capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def files(directory):
    return sorted(name for name in os.listdir(directory) if not name.startswith("."))


def test_a_command_line_of_the_original_works(dovecot, small_account, tmp_path):
    env, password = small_account
    secret = tmp_path / "pw"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    server = f"127.0.0.1:{dovecot.ssl_port}"
    env = {k: v for k, v in env.items() if k not in ("IMAP_SERVER", "IMAP_USER", "IMAP_TLS")}
    done = imapbackup(env, "-a", "-e", "-s", server, "-u", env_user(small_account), "-p",
                      f"@{secret}", "-t", "30", "-d", tmp_path / "b", "--nospinner",
                      "--icloud", "-n", "-f", "INBOX")
    assert done.returncode == 0, done.stderr
    assert files(tmp_path / "b") == ["INBOX.mbox"]
    # --pass '\@...': the password itself, starting with @; --compress=gzip.
    done = imapbackup(env, f"--server={server}", "--ssl", f"--user={env_user(small_account)}",
                      f"--pass=\\{password}", "--compress=gzip", f"--mbox-dir={tmp_path / 'c'}",
                      "-f", "Personal")
    assert done.returncode == 0, done.stderr
    assert files(tmp_path / "c") == ["Personal.mbox.gz"]
    assert password not in done.stderr


def env_user(account):
    return account[0]["IMAP_USER"]


def test_folders_by_name_inbox_any_case_escaped_commas_and_typos(small_account, tmp_path):
    env = dict(small_account[0], IMAP_PASSWORD=small_account[1])
    done = imapbackup(env, "-d", tmp_path, "-f", "Inbox", "-f", "Receipts\\, 2024")
    assert done.returncode == 0, done.stderr
    assert files(tmp_path) == ["INBOX.mbox", "Receipts, 2024.mbox"]
    typo = imapbackup(env, "-d", tmp_path, "-f", "Persnal,INBOX")
    assert typo.returncode == 1
    assert "imap-list: Persnal: no such folder on the server; the closest: Personal\n" \
        in typo.stderr
    assert "Mailbox doesn't exist" not in typo.stderr
    excluded = imapbackup(env, "-d", tmp_path / "x", "--exclude-folders", "Personl,inbox")
    assert excluded.returncode == 0, excluded.stderr
    assert files(tmp_path / "x") == ["Personal.mbox", "Receipts, 2024.mbox"]
    assert "imap-list: --exclude-folder Personl: no such folder on the server; the " \
           "closest: Personal\n" in excluded.stderr


def test_a_client_certificate_with_c_and_k(strict_server, tmp_path):  # noqa: F811
    server, certfile, keyfile, env = strict_server
    env = dict(env, IMAP_SERVER=f"127.0.0.1:{server.ssl_port}")
    del env["IMAP_TLS"]
    refused = imapbackup(env, "-e", "-d", tmp_path, "-f", "INBOX")
    assert refused.returncode == 77, refused.stderr
    done = imapbackup(env, "-e", "-c", certfile, "-k", keyfile, "-d", tmp_path, "-f", "INBOX")
    assert done.returncode == 0, done.stderr
    done = imapbackup(env, "-e", f"--certfile={certfile}", f"--keyfile={keyfile}", "-d",
                      tmp_path, "-f", "INBOX")
    assert done.returncode == 0, done.stderr


def test_bad_directories_and_a_missing_plumbing_are_one_line_each(small_account, tmp_path):
    env = dict(small_account[0], IMAP_PASSWORD=small_account[1])
    (tmp_path / "afile").write_text("")
    done = imapbackup(env, "-d", tmp_path / "afile")
    assert (done.returncode, done.stderr) == (74, f"imapbackup: -d {tmp_path}/afile: it is a "
                                                  f"file, not a directory\n")
    done = imapbackup(env, "-d", "-weird", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("imapbackup: -d wants a directory, not '-weird'")
    assert not (tmp_path / "-weird").exists()
    copy = tmp_path / "clone" / "bin"
    copy.mkdir(parents=True)
    shutil.copy(IMAPBACKUP, copy)
    done = subprocess.run([copy / "imapbackup", "-d", tmp_path], capture_output=True,
                          text=True, env=dict(env, PATH="/usr/bin:/bin"), timeout=60)
    assert done.returncode == 69 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("imapbackup: imap-list is not on PATH: install imapstream")
    # The clone itself, after make: bin/imapbackup finds the plumbing in .venv.
    done = subprocess.run([IMAPBACKUP, "--version"], capture_output=True, text=True,
                          env=dict(env, PATH="/usr/bin:/bin"), timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("imapbackup ")


def test_a_wrong_password_at_the_prompt_is_asked_again(small_account, tmp_path):
    env, password = small_account
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(IMAPBACKUP, [IMAPBACKUP, "-d", str(tmp_path), "-f", "INBOX"], env)
    output, prompts = b"", 0
    answers = [b"wrong", password.encode()]
    while True:
        if not select.select([fd], [], [], 60)[0]:
            raise AssertionError(output)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        if output.count(b"Password: ") > prompts:
            os.write(fd, answers[prompts] + b"\n")
            prompts += 1
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert prompts == 2
    assert b"imapbackup: login as " in output and b"; try again" in output
    assert files(tmp_path) == ["INBOX.mbox"]


def test_check_says_per_folder_what_is_missing(dovecot, small_account, tmp_path):
    env = dict(small_account[0], IMAP_PASSWORD=small_account[1])
    assert imapbackup(env, "-d", tmp_path, "-f", "INBOX,Personal").returncode == 0
    done = imapbackup(env, "--check", "-d", tmp_path)
    assert done.returncode == 1, done.stderr
    lines = sorted(done.stdout.splitlines())
    assert lines == [
        "CHECK: INBOX: 2 on the server, 2 in the backup, 0 missing, 0 deleted on the "
        "server, 0 only in the backup",
        "CHECK: Personal: 1 on the server, 1 in the backup, 0 missing, 0 deleted on the "
        "server, 0 only in the backup",
        "CHECK: Receipts, 2024: 1 on the server, 0 in the backup, 1 missing, 0 deleted on the "
        "server, 0 only in the backup"]
    assert done.stderr == ("imapbackup: messages on the server are missing from the backup "
                           "(exit status 1)\n")
    assert files(tmp_path) == ["INBOX.mbox", "Personal.mbox"]  # touched nothing
    done = imapbackup(env, "--check", "--json", "-d", tmp_path, "-f", "INBOX")
    assert done.returncode == 0
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"folder": "INBOX", "file": f"{tmp_path}/INBOX.mbox", "server": 2, "backup": 2,
         "missing": 0, "deleted": 0, "only_in_backup": 0}]
