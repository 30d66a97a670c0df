"""kill -9 at random moments: every mbox stays readable, a torn tail is detected and cut
off by the next run, and the backup ends equal to the server, count for count."""

import base64
import contextlib
import mailbox
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from plumbing import append_all, backup_messages, server_messages, session_processes

from imapstream.mbox.reader import TornTail, scan
from imapstream.mbox.scan import CutStream

PIPELINE = ("imap-list --all | mbox-ids --missing -d backup | imap-fetch "
            "| mbox-merge -d backup -z {compression}")
KILLS = 24


def start(env, cwd, compression):
    command = PIPELINE.format(compression=compression)
    with open(os.path.join(cwd, "stderr"), "ab") as stderr:
        return subprocess.Popen(["bash", "-o", "pipefail", "-c", command], env=env, cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)


def completes(run, cwd):
    """Whether a run ends well; if it hangs, what it and its processes were doing."""
    try:
        return run.wait(120) == 0 or open(os.path.join(cwd, "stderr")).read()[-2000:]
    except subprocess.TimeoutExpired:
        processes = subprocess.run(["ps", "-s", str(run.pid), "-o", "pid,stat,wchan:24,args"],
                                   capture_output=True, text=True).stdout
        locks = sorted(p.name for p in (cwd / "backup").glob("*.lock"))
        os.killpg(run.pid, signal.SIGKILL)
        return f"hung: {processes} locks {locks}\n" + open(os.path.join(cwd, "stderr")).read()


def readable(directory):
    """Every file parses; only its end may be cut short (a torn last message, a cut last
    gzip member), reported as such and never taken for a message; Python's mailbox
    reads a plain file as the same messages (and the torn one's From line, if whole).
    Returns how many files had a torn end."""
    torn = 0
    for name in os.listdir(directory):
        if not name.endswith((".mbox", ".mbox.gz")):
            continue
        path = os.path.join(directory, name)
        whole, torn_at = [], None
        try:
            for offset, _record, _data in scan(path):
                whole.append(offset)
        except TornTail as exc:
            assert name.endswith(".mbox"), exc
            torn_at = exc.offset
        except CutStream:
            assert name.endswith(".gz")
            torn_at = -1
        torn += torn_at is not None
        if name.endswith(".mbox"):
            with open(path, "rb") as f:
                text = f.read()
            assert torn_at is None or torn_at > (whole[-1] if whole else -1)
            cut_from_line = torn_at is not None and text[torn_at:torn_at + 5] == b"From "
            assert len(mailbox.mbox(path)) == len(whole) + cut_from_line, path
    return torn


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_kill_9_anywhere_loses_nothing(dovecot, new_user, tmp_path, compression):
    user, _ = new_user("fs")
    client = dovecot.client(user)
    folders = ("INBOX", "A", "B/C")
    for folder in folders[1:]:
        client.create_folder(folder)
    # The moments of the kills: CRASH_SEED=N replays a run (the seed is printed).
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(2**32))
    print(f"CRASH_SEED={seed}")
    noise, rng = random.Random(7), random.Random(seed)

    def new_mail(count):
        for folder in folders:
            append_all(client, folder, [
                b"Subject: %d\r\nMessage-ID: <%d@crash>\r\n\r\n" % (n, n % 7)
                + base64.encodebytes(noise.randbytes(3000 + 997 * n % 90000))
                for n in range(count)])

    new_mail(30)
    env = dict(os.environ, **dovecot.env(user),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    full = time.monotonic()
    assert completes(start(env, tmp_path, compression), tmp_path) is True
    full = time.monotonic() - full
    shutil.rmtree(tmp_path / "backup")
    torn = 0
    for _ in range(KILLS):
        run = start(env, tmp_path, compression)
        moment = rng.random()
        print(f"kill at {moment:.3f} of a full run")
        time.sleep(moment * full)
        if run.poll() is not None:
            new_mail(8)  # it finished before the kill: give the next one work
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        if (tmp_path / "backup").exists():
            torn += readable(tmp_path / "backup")
    print(f"{torn} torn files seen after {KILLS} kills")
    assert completes(start(env, tmp_path, compression), tmp_path) is True
    assert backup_messages(str(tmp_path / "backup")) == server_messages(client)
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "backup").iterdir()}
    assert completes(start(env, tmp_path, compression), tmp_path) is True
    assert {p.name: p.stat().st_size for p in (tmp_path / "backup").iterdir()} == sizes


IMAPBACKUP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "bin", "imapbackup")
RUNS = 5  # interrupted runs per mode


def crash(session):
    """kill -9 every process of the session at once, as a power cut would."""
    while pids := session_processes(session):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def leftovers(backup, temporary):
    """What a finished run must not leave: -y copies, temporary files, dotlocks."""
    return (sorted(p.name for p in backup.iterdir()
                   if not p.name.endswith((".mbox", ".mbox.gz", ".mbox.ids", ".mbox.gz.ids")))
            + sorted(p.name for p in temporary.iterdir()))


@pytest.mark.parametrize("options", [[], ["-z"], ["-y"]], ids=["plain", "gzip", "overwrite"])
def test_imapbackup_killed_or_signalled_at_random_moments_loses_nothing(
        dovecot, new_user, tmp_path, options):
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1 << 32))
    print(f"CRASH_SEED={seed}")
    rng = random.Random(seed)
    user, _ = new_user("fs")
    client = dovecot.client(user)
    folders = ("INBOX", "A", "B/C")
    for folder in folders[1:]:
        client.create_folder(folder)
    serial = iter(range(1 << 30))

    def new_mail(count):
        for folder in folders:
            append_all(client, folder, [
                b"Subject: %d\r\nMessage-ID: <%d@crash>\r\n\r\n" % (n, n % 7)
                + base64.encodebytes(rng.randbytes(3000 + 997 * n % 60000))
                for n in (next(serial) for _ in range(count))])

    new_mail(12)
    backup, temporary = tmp_path / "backup", tmp_path / "tmp"
    temporary.mkdir()
    env = dict(os.environ, **dovecot.env(user), TMPDIR=str(temporary),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])

    def start():
        with open(tmp_path / "stderr", "ab") as stderr:
            return subprocess.Popen([IMAPBACKUP, "-d", str(backup), "--nospinner", *options],
                                    env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                    start_new_session=True)

    full = time.monotonic()
    assert completes(start(), tmp_path) is True
    full = time.monotonic() - full
    shutil.rmtree(backup)
    for _ in range(RUNS):
        run = start()
        time.sleep(rng.uniform(0, full))
        how = rng.choice(["kill -9", signal.SIGINT, signal.SIGTERM])
        if run.poll() is not None:
            new_mail(5)  # it finished first: give the next one work
        if how == "kill -9":
            crash(run.pid)
            run.wait()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, how)
            # -how: the signal came before bash set its traps; a shell sees 128 + how too.
            assert run.wait(60) in (0, 128 + how, -how), (seed, how)
            deadline = time.monotonic() + 10  # its last processes may still be exiting
            while session_processes(run.pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert session_processes(run.pid) == [], (seed, how)
        if backup.exists():
            readable(backup)
    assert completes(start(), tmp_path) is True, seed
    assert backup_messages(str(backup)) == server_messages(client), seed
    sizes = {p.name: p.stat().st_size for p in backup.iterdir()}
    assert completes(start(), tmp_path) is True, seed
    assert {p.name: p.stat().st_size for p in backup.iterdir()} == sizes, seed
    assert leftovers(backup, temporary) == [], seed
