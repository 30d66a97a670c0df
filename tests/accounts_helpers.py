"""Accounts for imapbackup --accounts tests: Dovecot users holding a few messages, their
accounts-file lines, and the run itself (bin/imapbackup, as an admin types it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from plumbing import append_all, backup_messages, server_messages

REPO = Path(__file__).resolve().parent.parent


def message(user, number):
    return (f"From: sender{number}@example.org\r\nTo: {user}@example.org\r\n"
            f"Subject: {user} number {number}\r\nMessage-ID: <{user}.{number}@example.org>\r\n"
            f"\r\nBody {number} of {user}.\r\n").encode()


def mail_user(dovecot, messages=3):
    """A new user with messages in INBOX and one in Sent; (user, password)."""
    user, password = dovecot.new_user("fs")
    with dovecot.client(user) as client:
        append_all(client, "INBOX", [message(user, n) for n in range(messages)])
        client.create_folder("Sent")
        append_all(client, "Sent", [message(user, messages)])
    return user, password


def account_line(dovecot, directory, name, user, password, **fields):
    """The account's fields, its password in a file (mode 0600) below directory."""
    secret = Path(directory, f"{name}.password")
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    return {"name": name, "server": f"{dovecot.host}:{dovecot.port}", "user": user,
            "password_file": str(secret), "tls": "starttls", "cafile": str(dovecot.cafile),
            **fields}


def accounts_file(path, lines):
    """lines (dicts, or strings written as they are) as an accounts file at path."""
    path.write_bytes(b"".join((line.encode() if isinstance(line, str) else
                               orjson.dumps(line)) + b"\n" for line in lines))
    return path


def environment(**extra):
    """os.environ with bin/ and the venv first on PATH, and an IMAP_PASSWORD of another
    account that no account of the file may use."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP_")}
    env["PATH"] = os.pathsep.join([str(REPO / "bin"), os.path.dirname(sys.executable),
                                   env["PATH"]])
    env["IMAP_PASSWORD"] = "not-this-one"
    env.update(extra)
    return env


def imapbackup(*args, env=None, cwd=None, timeout=120):
    return subprocess.run([str(REPO / "bin" / "imapbackup"), *map(str, args)],
                          env=env or environment(), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def records(stdout):
    """The per-account records by account, and the closing record."""
    lines = [orjson.loads(line) for line in stdout.splitlines()]
    assert "account" not in lines[-1]
    return {r["account"]: r for r in lines[:-1]}, lines[-1]


def assert_backed_up(dovecot, user, directory):
    with dovecot.client(user) as client:
        assert backup_messages(directory) == server_messages(client)
