"""One account of imapbackup --accounts, on the host it runs on: under the account's lock
and one of its server's connection slots, imapbackup into the account's directory, its
diagnostics into the account's log, then the account's summary record (imapstream(7),
"Account record").  The password never passes through here: imapbackup gets the
account's password file or command and reads it itself."""

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .accounts import imapbackup_argv
from .errors import IOERR, TEMPFAIL, UNAVAILABLE
from .records import orjson

LOCK = ".imapbackup.lock"
LOG = "imapbackup.log"
STATE = ".imapbackup-accounts"  # in the backup root: slots/, and on the controller its runs
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SLOT_POLL = (0.05, 1.0)  # seconds between looks for a free slot: first, and at most


def account_record(name, status, summary=None, error=None, seconds=0.0):
    """The account's summary record from imapbackup's --json record (or none)."""
    summary = summary or {}
    record = {"account": name, "status": status, "folders": summary.get("folders", 0),
              "messages": summary.get("messages", 0), "bytes": summary.get("bytes", 0),
              "seconds": round(seconds, 1), "failed": summary.get("failed", [])}
    if error:
        record["error"] = error
    return record


@contextlib.contextmanager
def server_slot(root, server, limit, log, stopped):
    """Hold one of limit lock files of server in root/STATE/slots while inside: at most
    limit accounts of one server run at a time on this host (for this root).  Gives up
    waiting, and holds none, once stopped (a list of signal statuses) is not empty."""
    slots = Path(root, STATE, "slots")
    slots.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem = re.sub(r"[^a-z0-9.-]", "_", server)
    pause, said = SLOT_POLL[0], False
    while not stopped:
        for number in range(limit):
            fd = os.open(slots / f"{stem}.{number}", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            try:
                yield number
            finally:
                os.close(fd)
            return
        if not said:
            log.write(f"imapbackup: waiting for one of the {limit} slots of {server}\n")
            log.flush()
            said = True
        time.sleep(pause)
        pause = min(pause * 2, SLOT_POLL[1])
    yield None


def imapbackup_program():
    """imapbackup beside this command (a venv, make install), else on PATH."""
    here = os.path.dirname(os.path.abspath(sys.argv[0]))
    return shutil.which("imapbackup", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def last_line(path):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next((line for line in reversed(lines) if line.strip()), None)


def run_account(account, root, limit):
    """Back up account into root/dir; its record and exit status."""
    directory = Path(root, account.dir)
    stopped = []

    def stop(signum, _frame):
        stopped.append(128 + signum)
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    child = None
    for signum in SIGNALS:
        signal.signal(signum, stop)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        return account_record(account.name, IOERR, error=f"{directory}: {exc.strerror}")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return account_record(account.name, TEMPFAIL,
                              error=f"{directory}: another run is backing up this account")
    program = imapbackup_program()
    if program is None:
        return account_record(account.name, UNAVAILABLE, error="imapbackup is not on PATH")
    # Nothing of the caller's account reaches this one (IMAP_PASSWORD above all).
    env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP_")}
    log_fd = os.open(directory / LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(log_fd, "w") as log, server_slot(
            root, account.server, limit, log, stopped):
        if stopped:
            return account_record(account.name, stopped[0], error="stopped before it began")
        start = time.monotonic()
        child = subprocess.Popen([program, *imapbackup_argv(account, directory)], env=env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log)
        output = child.communicate()[0]
        seconds = time.monotonic() - start
    summary = None
    for line in reversed(output.splitlines()):
        with contextlib.suppress(ValueError):
            summary = orjson().loads(line)
            break
    status = child.returncode if child.returncode >= 0 else 128 - child.returncode
    error = None if status == 0 else last_line(directory / LOG)
    record = account_record(account.name, status, summary, error, seconds)
    with open(directory / LOG, "ab") as log:
        log.write(orjson().dumps(record) + b"\n")
    return record
