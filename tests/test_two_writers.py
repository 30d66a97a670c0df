"""Writers at once on the same mbox files: mbox-merge processes fed the same or
overlapping streams serialise through the dotlock (FILE.lock) and flock(2), and the
files end up holding every message exactly once.  A lock held by another program, as
mutt or Dovecot take it, makes mbox-merge wait; one whose process is gone is broken,
also when a new process has come to have its PID, or the killed one is not reaped."""

import fcntl
import io
import os
import subprocess
import sys
import time

import pytest

from imapstream import errors
from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan
from imapstream.stream import write_message

MERGE = os.path.join(os.path.dirname(sys.executable), "mbox-merge")
FOLDERS = ("INBOX", "Lists/python")


def message(folder, uid):
    body = b"".join(b"line %d of %s/%d\r\n" % (n, folder.encode(), uid) for n in range(60))
    return (b"Subject: %d\r\nMessage-ID: <%d.%s@writers>\r\n\r\nFrom the start\r\n"
            % (uid, uid, folder.encode()) + body)


def stream(uids):
    """The messages of uids in both folders, alternating, so that every message makes a
    writer leave one file for the other: a lock taken and released each time."""
    out = io.BytesIO()
    for uid in uids:
        for folder in FOLDERS:
            write_message(out, {"folder": folder, "delimiter": "/", "uidvalidity": 7,
                                "uid": uid, "flags": ["\\Seen"]}, message(folder, uid))
    return out.getvalue()


def merge_at_once(streams, target, tmp_path):
    """Start one mbox-merge per stream, all at once, on target; their statuses."""
    writers = []
    for number, data in enumerate(streams):
        source = tmp_path / f"stream{number}"
        source.write_bytes(data)
        with open(source, "rb") as stdin:
            writers.append(subprocess.Popen([MERGE, *target], stdin=stdin,
                                            stderr=subprocess.PIPE))
    return [(writer.wait(120), writer.stderr.read().decode()) for writer in writers]


def held(directory):
    """{folder: [uid, ...] in file order}, checking each message's bytes."""
    found = {}
    for path in mbox_files(str(directory)):
        for _offset, record, data in scan(path):
            assert data == message(record["folder"], record["uid"]).replace(b"\r\n", b"\n")
            found.setdefault(record["folder"], []).append(record["uid"])
    return found


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_writers_with_the_same_stream_store_each_message_once(tmp_path, compression):
    backup = tmp_path / "backup"
    data = stream(range(1, 61))
    results = merge_at_once([data] * 3, ["-z", compression, "-d", str(backup)], tmp_path)
    assert [status for status, _err in results] == [errors.OK] * 3, results
    assert {folder: sorted(uids) for folder, uids in held(backup).items()} == {
        folder: list(range(1, 61)) for folder in FOLDERS}
    assert not list(backup.glob("*.lock"))
    sizes = {p.name: p.stat().st_size for p in backup.iterdir()}
    assert merge_at_once([data], ["-d", str(backup)], tmp_path)[0][0] == errors.OK
    assert {p.name: p.stat().st_size for p in backup.iterdir()} == sizes


def test_writers_with_overlapping_streams_store_the_union(tmp_path):
    backup = tmp_path / "backup"
    streams = [stream(range(1, 81)), stream(range(41, 121)), stream(range(120, 0, -1))]
    results = merge_at_once(streams, ["-d", str(backup)], tmp_path)
    assert [status for status, _err in results] == [errors.OK] * 3, results
    appended = sum(int(line.split()[2]) for _status, err in results
                   for line in err.splitlines() if line.startswith("APPEND: Appended"))
    assert appended == 2 * 120
    assert {folder: sorted(uids) for folder, uids in held(backup).items()} == {
        folder: list(range(1, 121)) for folder in FOLDERS}


def test_writers_on_one_file(tmp_path):
    target = tmp_path / "all.mbox"
    streams = [stream(range(1, 41)), stream(range(21, 61))]
    results = merge_at_once(streams, [str(target)], tmp_path)
    assert [status for status, _err in results] == [errors.OK] * 2, results
    assert sorted((r["folder"], r["uid"]) for _o, r, _d in scan(str(target))) == sorted(
        (folder, uid) for uid in range(1, 61) for folder in FOLDERS)


def blocked_on_flock(writer):
    """Wait until the kernel lists writer as waiting for an flock (/proc/locks marks a
    blocked request with "->"); whether it did within 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open("/proc/locks") as locks:
            if any(line.split()[1:3] == ["->", "FLOCK"] and line.split()[5] == str(writer.pid)
                   for line in locks):
                return True
        time.sleep(0.01)
    return False


def said_it_waits(writer):
    """Read writer's stderr up to its line saying it waits for the dotlock, which it
    writes after 5 s of finding the holder alive; whether it came."""
    line = writer.stderr.readline()
    return line.startswith(b"mbox-merge: waiting for ") and line.endswith(
        b".lock, held by another process\n")


def test_a_dotlock_held_by_another_program_is_waited_for(tmp_path):
    target = tmp_path / "INBOX.mbox"
    target.write_bytes(b"")
    lock = tmp_path / "INBOX.mbox.lock"
    lock.write_text(f"{os.getpid()}\n")  # as mutt and Dovecot write it
    writer = subprocess.Popen([MERGE, str(target)], stdin=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    writer.stdin.write(stream([1]))
    writer.stdin.close()
    try:
        assert said_it_waits(writer)
        assert writer.poll() is None and target.stat().st_size == 0
    finally:
        lock.unlink()
    assert writer.wait(30) == errors.OK
    assert [r["uid"] for _o, r, _d in scan(str(target))] == [1, 1]
    assert not lock.exists()


@pytest.mark.skipif(not os.path.exists("/proc/locks"), reason="needs Linux /proc/locks")
def test_an_flock_held_by_another_program_is_waited_for(tmp_path):
    target = tmp_path / "INBOX.mbox"
    target.write_bytes(b"")
    with open(target, "rb") as held_file:
        fcntl.flock(held_file, fcntl.LOCK_EX)
        writer = subprocess.Popen([MERGE, str(target)], stdin=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        writer.stdin.write(stream([1]))
        writer.stdin.close()
        assert blocked_on_flock(writer)
        assert writer.poll() is None and target.stat().st_size == 0
    assert writer.wait(30) == errors.OK
    assert len(list(scan(str(target)))) == 2


def merge_past(lock_pid, tmp_path, age=0):
    """mbox-merge on a file whose dotlock names lock_pid and was made age seconds ago;
    whether it went ahead."""
    target, lock = tmp_path / "INBOX.mbox", tmp_path / "INBOX.mbox.lock"
    lock.write_text(f"{lock_pid}\n")
    os.utime(lock, (time.time() - age, time.time() - age))
    writer = subprocess.run([MERGE, str(target)], input=stream([1]), capture_output=True,
                            timeout=30)
    return writer.returncode == errors.OK and len(list(scan(str(target)))) == 2 \
        and not lock.exists()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_a_dotlock_whose_pid_came_round_again_is_broken(tmp_path):
    """The holder was killed, and a process started since has its PID."""
    newcomer = subprocess.Popen(["sleep", "60"])
    try:
        assert merge_past(newcomer.pid, tmp_path, age=100)
    finally:
        newcomer.kill()
        newcomer.wait()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_a_dotlock_of_a_killed_holder_not_yet_reaped_is_broken(tmp_path):
    zombie = subprocess.Popen(["true"])
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # exited, still not reaped
    try:
        assert merge_past(zombie.pid, tmp_path)
    finally:
        zombie.wait()


def test_a_dotlock_whose_process_is_gone_is_broken(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert merge_past(dead.pid, tmp_path)



def test_our_dotlock_left_by_a_killed_writer_is_broken_at_once(tmp_path):
    """Whatever process has its PID now, even one started within the same second: a
    writer takes the flock before its dotlock, so ours seen under the flock is stale."""
    newcomer = subprocess.Popen(["sleep", "60"])
    target, lock = tmp_path / "INBOX.mbox", tmp_path / "INBOX.mbox.lock"
    lock.write_text(f"{newcomer.pid} imapstream\n")
    try:
        writer = subprocess.run([MERGE, str(target)], input=stream([1]),
                                capture_output=True, timeout=30)
    finally:
        newcomer.kill()
        newcomer.wait()
    assert writer.returncode == errors.OK and len(list(scan(str(target)))) == 2
    assert not lock.exists()


def test_an_empty_dotlock_some_seconds_old_is_broken(tmp_path):
    """Its maker writes its PID at once, so it was killed in between."""
    assert merge_past("", tmp_path, age=10)
