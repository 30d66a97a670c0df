"""make check-install (run by .ci/run after make test): `pipx install .` as the README
says, into a throwaway PIPX_HOME, then the installed commands with nothing else on PATH:
each answers --version, imapbackup --help, and imapbackup backs up INBOX of a test
Dovecot through the installed plumbing (pipx links them all into one directory).

A pipx that cannot reach a package index skips loudly, except in CI (CI=true), where
that fails as any other error does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dovecot import Dovecot

from imapstream import __version__

REPO = Path(__file__).resolve().parent.parent
COMMANDS = ["imap-list", "imap-fetch", "imap-append", "mbox-ids", "mbox-merge", "imapbackup"]
OFFLINE = re.compile(r"Failed to establish a new connection|Temporary failure in name "
                     r"resolution|Network is unreachable|No matching distribution found")


def fail(message: str) -> None:
    sys.exit(f"check-install: FAILED: {message}")


def main() -> None:
    if not shutil.which("pipx"):
        fail("pipx is missing (apt-get install pipx)")
    with tempfile.TemporaryDirectory(prefix="imapstream-pipx-") as scratch:
        home = Path(scratch)
        os.chmod(home, 0o755)  # the test Dovecot's mail processes (as root: nobody) enter it
        env = dict(os.environ, PIPX_HOME=str(home / "pipx"), PIPX_BIN_DIR=str(home / "bin"),
                   PIPX_MAN_DIR=str(home / "man"))
        env = {k: v for k, v in env.items() if not k.startswith(("IMAP_", "VIRTUAL_ENV"))}
        done = subprocess.run(["pipx", "install", str(REPO)], env=env, capture_output=True,
                              text=True, timeout=900)
        if done.returncode:
            if OFFLINE.search(done.stdout + done.stderr) and os.environ.get("CI") != "true":
                print("check-install: SKIPPED, NOT PASSED: pipx cannot reach a package "
                      "index", file=sys.stderr)
                return
            fail(f"pipx install . exited {done.returncode}:\n{done.stdout}{done.stderr}")
        run_env = dict(env, PATH=f"{home / 'bin'}:/usr/bin:/bin", HOME=str(home))
        for command in COMMANDS:
            shown = run([command, "--version"], run_env)
            if shown.stdout != f"{command} {__version__}\n":
                fail(f"{command} --version: {shown.stdout!r} {shown.stderr!r}")
        shown = run(["imapbackup", "--help"], run_env)
        if shown.returncode or not shown.stdout.startswith("Usage: imapbackup"):
            fail(f"imapbackup --help: {shown.stdout!r} {shown.stderr!r}")
        backup(home, run_env)
    print(f"check-install: pipx install . gives {', '.join(COMMANDS)}, which work")


def backup(home: Path, env: dict[str, str]) -> None:
    server = Dovecot(home / "dovecot").start()
    try:
        user, _ = server.new_user("fs")
        with server.client(user) as client:
            client.append("INBOX", b"Subject: installed\r\n\r\nby pipx\r\n")
        done = run(["imapbackup", "-d", str(home / "backup"), "-f", "INBOX"],
                   dict(env, **server.env(user)))
        held = home / "backup" / "INBOX.mbox"
        if done.returncode or b"by pipx" not in held.read_bytes():
            fail(f"imapbackup exited {done.returncode}: {done.stderr}")
    finally:
        server.stop()


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
