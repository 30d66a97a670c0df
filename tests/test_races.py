"""Runs that race or are interrupted: a fresh copy (-y) replaces a file only under the
locks an append takes, an append that waited for them goes into the file that is there
now, a dead run's copy is removed by the next run, and every signal to imapbackup ends
every process of its run."""

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import command_env
from plumbing import append_all, backup_messages, run, server_messages, session_processes

from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox import sidecar

IMAPBACKUP = Path(__file__).resolve().parent.parent / "bin" / "imapbackup"


def waits_for_flock(path, process):
    """Whether process comes to wait for the flock(2) of the file at path (as
    /proc/locks shows: a "->" line on its inode) before it exits."""
    inode = f":{os.stat(path).st_ino} "
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        with open("/proc/locks") as locks:
            if any("->" in line and inode in line for line in locks):
                return True
        time.sleep(0.01)
    return False


def since_backup(directory):
    """The pipeline imapbackup runs, in-process: only what is new since the checkpoints."""
    statuses, data = [], b""
    for module, argv in ((imap_list, ["--all", "--since", directory]),
                         (mbox_ids, ["--missing", "-d", directory]), (imap_fetch, []),
                         (mbox_merge, ["-d", directory])):
        status, data = run(module, argv, data)
        statuses.append(status)
    assert statuses == [0, 0, 0, 0]


def messages(client, first, count):
    return [b"Subject: %d\r\nMessage-ID: <%d@race>\r\n\r\nbody %d\r\n" % (n, n, n)
            for n in range(first, first + count)]


def test_an_append_that_waited_goes_into_the_file_renamed_over_its_own(account, tmp_path):
    store, fresh = str(tmp_path / "store"), str(tmp_path / "fresh")
    append_all(account, "INBOX", messages(account, 0, 2))
    for directory in (store, fresh):  # the backup, and a fresh copy of it (-y)
        since_backup(directory)
    append_all(account, "INBOX", messages(account, 2, 1))
    _, listed = run(imap_list, ["--since", store, "INBOX"])
    _, missing = run(mbox_ids, ["--missing", "-d", store], listed)
    _, stream = run(imap_fetch, [], missing)
    target = os.path.join(store, "INBOX.mbox")
    with open(target, "rb") as held:  # a replacement under way holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        merge = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "mbox-merge"),
                                  "-d", store], stdin=subprocess.PIPE)
        merge.stdin.write(stream)
        merge.stdin.close()
        assert waits_for_flock(target, merge)
        os.rename(sidecar.path_for(os.path.join(fresh, "INBOX.mbox")), sidecar.path_for(target))
        os.rename(os.path.join(fresh, "INBOX.mbox"), target)
    assert merge.wait(60) == 0
    assert backup_messages(store) == server_messages(account)  # none in the file replaced
    since_backup(store)  # lists from the checkpoint the file has
    assert backup_messages(store) == server_messages(account)


def test_replace_waits_for_an_append_and_takes_the_other_suffixes_away(account, tmp_path):
    store, fresh = tmp_path / "store", tmp_path / "fresh"
    append_all(account, "INBOX", messages(account, 0, 3))
    since_backup(str(fresh))
    store.mkdir()
    (store / "INBOX.mbox").write_bytes(b"From a Mon Jan  1 00:00:00 2001\n\nold\n\n")
    (store / "INBOX.mbox.xz").write_bytes(b"")
    (store / ".INBOX.mbox.xz.ids").write_bytes(b"{}\n")
    new = (fresh / "INBOX.mbox").read_bytes()
    with open(store / "INBOX.mbox", "rb") as held:  # an append under way holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        replace = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "mbox-merge"),
                                    "-d", store, "--replace", fresh])
        assert waits_for_flock(store / "INBOX.mbox", replace)
    assert replace.wait(60) == 0
    assert sorted(p.name for p in store.iterdir()) == [".INBOX.mbox.ids", "INBOX.mbox"]
    assert (store / "INBOX.mbox").read_bytes() == new
    assert not fresh.exists()
    assert sidecar.checkpoints(str(store / "INBOX.mbox"))  # it describes the new file


def imapbackup(env, *args, **options):
    """imapbackup with SIGHUP at its default, whatever this test run was started under:
    bash cannot trap a signal that was ignored when it started (as under nohup)."""
    return subprocess.Popen(["env", "--default-signal=HUP", str(IMAPBACKUP), *map(str, args)],
                            env=env, start_new_session=True, **options)


def test_a_dead_runs_copy_is_removed_and_a_live_ones_kept(dovecot, imap_user, tmp_path):
    user, _ = imap_user
    with dovecot.client(user) as client:
        append_all(client, "INBOX", messages(client, 0, 2))
    gone = subprocess.Popen(["true"])
    gone.wait()
    backup_dir = tmp_path / "backup"
    dead = backup_dir / f".imapbackup-new.{gone.pid}.AbC123"
    live = backup_dir / f".imapbackup-new.{os.getpid()}.XyZ789"
    for copy in (dead, live):
        copy.mkdir(parents=True)
        (copy / "INBOX.mbox").write_bytes(b"")
    done = imapbackup(command_env(dovecot, user, tmp_path), "-d", backup_dir)
    assert done.wait(60) == 0
    assert not dead.exists()
    assert (live / "INBOX.mbox").exists()


@pytest.mark.parametrize(("signal_number", "status"), [
    (signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_to_imapbackup_alone_ends_its_whole_run(sample_account, tmp_path,
                                                         signal_number, status):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "imap-fetch").write_text(f"#!/bin/sh\necho $$ >{tmp_path}/fetching\nexec sleep 60\n")
    (shim / "imap-fetch").chmod(0o755)
    old = b"From x Mon Jan  1 00:00:00 2001\n\nx\n\n"
    backup_dir, temporary = tmp_path / "backup", tmp_path / "tmp"
    backup_dir.mkdir()
    temporary.mkdir()
    (backup_dir / "Sent.mbox").write_bytes(old)
    env = dict(sample_account, PATH=f"{shim}{os.pathsep}{sample_account['PATH']}",
               TMPDIR=str(temporary))
    run_ = imapbackup(env, "-y", "-d", backup_dir, "-j", "2", stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "fetching").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(run_.pid, signal_number)
    assert run_.wait(30) == status
    assert f"the backup is not complete (exit status {status})" in run_.stderr.read()
    deadline = time.monotonic() + 10
    while session_processes(run_.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert session_processes(run_.pid) == []
    assert (backup_dir / "Sent.mbox").read_bytes() == old
    assert sorted(p.name for p in backup_dir.iterdir()) == ["Sent.mbox"]
    assert list(temporary.iterdir()) == []


def test_the_next_merge_clears_what_a_killed_one_left(tmp_path):
    backup = tmp_path / "backup"
    backup.mkdir()
    for name in ("A.mbox", "B.mbox", "C.mbox"):
        (backup / name).write_bytes(b"")
    (backup / "A.mbox.lock").write_text("4242 imapstream\n")  # a killed mbox-merge's
    (backup / ".A.mbox.ids.x1y2z3ab").write_bytes(b"half a sidecar")
    (backup / "C.mbox.lock").write_text(f"{os.getpid()}\n")  # another program's, live
    with open(backup / "B.mbox", "rb") as held:  # an append under way: its files stay
        fcntl.flock(held, fcntl.LOCK_EX)
        (backup / "B.mbox.lock").write_text(f"{os.getpid()} imapstream\n")
        (backup / ".B.mbox.ids.q9w8e7r6").write_bytes(b"")
        status, _ = run(mbox_merge, ["-d", str(backup)])
    assert status == 0
    assert sorted(p.name for p in backup.iterdir()) == [
        ".B.mbox.ids.q9w8e7r6", "A.mbox", "B.mbox", "B.mbox.lock", "C.mbox", "C.mbox.lock"]


def test_an_older_versions_copy_goes_once_untouched_for_a_day(dovecot, imap_user, tmp_path):
    """Older versions named their -y copy .imapbackup-new.XXXXXX, without the PID: one in
    which nothing changed for a day is no run's any more, and goes; a newer one stays,
    even one whose XXXXXX are digits (no PID: no process says it is dead)."""
    user, _ = imap_user
    with dovecot.client(user) as client:
        append_all(client, "INBOX", messages(client, 0, 1))
    backup_dir = tmp_path / "backup"
    old, recent, digits = (backup_dir / f".imapbackup-new.{name}"
                           for name in ("Ab3xYz", "Qw8rTy", "999999"))
    two_days_ago = time.time() - 2 * 86400
    for copy in (old, recent, digits):
        copy.mkdir(parents=True)
        (copy / "INBOX.mbox").write_bytes(b"")
    for path in (old / "INBOX.mbox", old):
        os.utime(path, (two_days_ago, two_days_ago))
    os.utime(recent, (two_days_ago, two_days_ago))  # its file changed an hour ago
    os.utime(recent / "INBOX.mbox", (time.time() - 3600,) * 2)
    done = imapbackup(command_env(dovecot, user, tmp_path), "-d", backup_dir)
    assert done.wait(60) == 0
    assert not old.exists()
    assert (recent / "INBOX.mbox").exists() and (digits / "INBOX.mbox").exists()
