"""The installed commands through real pipes: the whole-account pipeline, and streaming
(a record goes out as soon as it is complete, not when the input ends)."""

import os
import select
import signal
import subprocess

import orjson
from conftest import command_env
from plumbing import AWKWARD, append_all, backup_messages, server_messages

PIPELINE = ("imap-list --all | mbox-ids --missing -d backup | imap-fetch "
            "| mbox-merge -d backup --json")


def sh(command, env, cwd):
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=cwd,
                          capture_output=True, timeout=120)


def test_the_pipeline_through_real_pipes(dovecot, new_user, tmp_path):
    user, _ = new_user("maildir++")
    client = dovecot.client(user)
    client.create_folder("Personal.2005.Q3")
    append_all(client, "INBOX", AWKWARD)
    append_all(client, "Personal.2005.Q3", AWKWARD[:4])
    env = command_env(dovecot, user)
    done = sh(PIPELINE, env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"APPEND: Appended 4 messages to Personal.2005.Q3.mbox" in done.stderr
    assert done.stdout.count(b'"messages":') == 2
    assert backup_messages(str(tmp_path / "backup")) == server_messages(client)
    again = sh(PIPELINE, env, tmp_path)
    assert again.returncode == 0 and again.stdout == b"" and again.stderr == b""
    one = sh("imap-list INBOX | imap-fetch --mbox > inbox.mbox && mbox-ids inbox.mbox | wc -l",
             env, tmp_path)
    assert one.stdout.strip() == str(len(AWKWARD)).encode()


def test_imap_fetch_streams_record_by_record(dovecot, new_user, tmp_path):
    user, _ = new_user("fs")
    client = dovecot.client(user)
    append_all(client, "INBOX", AWKWARD[:2])
    env = command_env(dovecot, user)
    records = subprocess.run(["imap-list", "INBOX"], env=env, capture_output=True,
                             check=True).stdout.splitlines(keepends=True)
    fetch = subprocess.Popen(["imap-fetch"], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        fetch.stdin.write(records[0])
        fetch.stdin.flush()
        # The first message arrives while imap-fetch still waits for more input.
        ready, _, _ = select.select([fetch.stdout], [], [], 30)
        assert ready, "imap-fetch held back a complete message"
        header = fetch.stdout.readline()
        assert b'"uid":1' in header and fetch.poll() is None
        fetch.stdin.write(records[1])
        fetch.stdin.close()
        rest = fetch.stdout.read()
        assert fetch.wait(30) == 0 and b'"uid":2' in rest
    finally:
        fetch.kill()


def many_messages(path, count=3000):
    """An mbox file whose held records fill more than a pipe's buffer."""
    path.write_bytes(b"".join(b"From MAILER-DAEMON Fri Jul  1 10:00:00 2005\nSubject: %d\n\nx\n\n"
                              % n for n in range(count)))
    return path


def test_a_reader_that_goes_away_gives_141_and_no_message(dovecot, new_user, tmp_path):
    """imapstream(7), EXIT STATUS: 141, the reader of standard output went away."""
    user, _ = new_user("fs")
    append_all(dovecot.client(user), "INBOX",  # more than a pipe's buffer holds
               [b"Subject: %d\r\n\r\n" % n + b"x" * 20000 + b"\r\n" for n in range(20)])
    env = command_env(dovecot, user)
    many_messages(tmp_path / "many.mbox")
    for pipeline in ("mbox-ids many.mbox | head -n 1",
                     "imap-list INBOX | imap-fetch | head -c 100"):
        done = sh(f"{pipeline} >/dev/null; echo ${{PIPESTATUS[@]}}", env, tmp_path)
        statuses = done.stdout.split()
        assert statuses[-2] == b"141" and statuses[-1] == b"0", (pipeline, done)
        assert done.stderr == b"", pipeline


def test_sigint_gives_130(dovecot, new_user, tmp_path):
    """imap-fetch interrupted while it waits for more records says so in one line and
    exits 130."""
    user, _ = new_user("fs")
    append_all(dovecot.client(user), "INBOX", AWKWARD[:2])
    env = command_env(dovecot, user)
    records = subprocess.run(["imap-list", "INBOX"], env=env, capture_output=True,
                             check=True).stdout.splitlines(keepends=True)
    fetch = subprocess.Popen(["imap-fetch"], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        fetch.stdin.write(records[0])
        fetch.stdin.flush()
        # It runs, and waits for the next record once the first message is out.
        out = b""
        while b"\n" not in out or len(out) < out.index(b"\n") + 1 + orjson.loads(
                out.split(b"\n", 1)[0])["length"] + 1:
            out += os.read(fetch.stdout.fileno(), 1 << 16)
        fetch.send_signal(signal.SIGINT)
        assert fetch.wait(30) == 130
        assert fetch.stderr.read() == b"imap-fetch: interrupted\n"
        assert fetch.stdout.read() == b""
    finally:
        fetch.kill()
