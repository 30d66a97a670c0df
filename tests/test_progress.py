"""imap-fetch's progress line: the folder, messages and bytes done of the totals the
records give, rate and ETA, redrawn on a terminal while a large message arrives."""

import fcntl
import os
import pty
import re
import select
import socket
import struct
import subprocess
import sys
import termios
import threading

import orjson
from conftest import command_env

from imapstream.progress import Progress, Shared


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_line_says_folder_done_of_total_rate_and_eta():
    clock = Clock()
    progress = Progress("FETCH", enabled=False, clock=clock)
    progress.started = clock.now  # as the first record would set it on a terminal
    progress.folder = "Personal/2005/Q3"
    for _ in range(4):
        progress.expect(500_000)
    assert progress.line() == "FETCH Personal/2005/Q3: 0/4 messages, 0.0/2.0 MB (0%)"
    clock.now += 5
    progress.arrived(600_000)
    progress.add(500_000)
    progress.arrived(400_000)  # half of the second message
    assert progress.line() == ("FETCH Personal/2005/Q3: 1/4 messages, 1.0/2.0 MB (50%), "
                               "0.2 MB/s, ETA 0:00:05")
    progress.arrived(1_000_000)
    for _ in range(3):
        progress.add(500_000)
    assert progress.line() == "FETCH Personal/2005/Q3: 4/4 messages, 2.0/2.0 MB (100%), " \
                              "0.4 MB/s"


def test_a_large_message_is_reported_piece_by_piece(dovecot, account, monkeypatch):
    from imapstream.commands.imap_list import parser
    from imapstream.imap import connection

    body = b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n"
    message = body + b"y" * 998 * 1000 + b"\r\n"
    account.append("INBOX", message)
    options = parser().parse_args([])
    pieces = []
    options.on_data = pieces.append
    client = connection.connect(options)
    try:
        client.select_folder("INBOX", readonly=True)
        fetched = client.fetch([1], ["BODY.PEEK[]"])
    finally:
        connection.logout(client)
    assert len(fetched[1][b"BODY[]"]) == len(message)
    assert sum(pieces) == len(message) and len(pieces) == -(-len(message) // (1 << 16))


def test_on_a_terminal_the_line_moves_and_ends_erased(dovecot, new_user, tmp_path):
    """imap-list | imap-fetch with stderr on a pty: records stay open until the line,
    with the totals of all three records, has been drawn."""
    user, _ = new_user("fs")
    with dovecot.client(user) as client:
        client.create_folder("Big")
        for number in range(3):
            client.append("Big", f"Subject: {number}\r\n\r\n".encode() + b"z" * 400_000)
    env = dict(command_env(dovecot, user, tmp_path), TERM="xterm")
    listed = subprocess.run(["imap-list", "Big"], env=env, capture_output=True, check=True)
    controller, terminal = pty.openpty()
    fetch = subprocess.Popen(["imap-fetch"], env=env, stdin=subprocess.PIPE,
                             stdout=open(tmp_path / "stream", "wb"), stderr=terminal)
    os.close(terminal)
    fetch.stdin.write(listed.stdout)
    fetch.stdin.flush()
    seen = b""
    while b"3/3 messages" not in seen:
        assert select.select([controller], [], [], 60)[0], seen
        seen += os.read(controller, 4096)
    fetch.stdin.close()
    assert fetch.wait(60) == 0
    while select.select([controller], [], [], 0)[0]:
        try:
            seen += os.read(controller, 4096)
        except OSError:
            break
    os.close(controller)
    line = seen.split(b"3/3 messages")[0].rsplit(b"\r", 1)[1] + b"3/3 messages"
    assert line == b"FETCH Big: 3/3 messages"
    assert b"3/3 messages, 1.2/1.2 MB (100%), " in seen
    assert seen.endswith(b"\r\x1b[K")
    assert (tmp_path / "stream").read_bytes().count(b'"folder":"Big"') == 3


def test_shared_sums_every_process_and_names_the_folders_sorted(tmp_path):
    """imapbackup -j N: the line of the processes sharing a directory sums their counts
    (one already ended: no folder), names the folders being fetched and takes the rate
    from the earliest start."""
    clock = Clock()
    states = {"11": {"messages": 2, "expected_messages": 3, "received": 1_500_000,
                     "expected_bytes": 2_000_000, "folders": ["Work"], "started": 90.0},
              "12": {"messages": 1, "expected_messages": 1, "received": 500_000,
                     "expected_bytes": 500_000, "folders": [], "started": 95.0},
              "13": {"messages": 0, "expected_messages": 2, "received": 0,
                     "expected_bytes": 1_500_000, "folders": ["Archive"], "started": None}}
    for name, state in states.items():
        (tmp_path / name).write_bytes(orjson.dumps(state))
    (tmp_path / "lock").write_bytes(b"")
    progress = Progress("FETCH", enabled=False, clock=clock)
    assert progress.line(Shared(tmp_path).sums()) == (
        "FETCH Archive, Work: 3/6 messages, 2.0/4.0 MB (50%), 0.2 MB/s, ETA 0:00:10")


def read_terminal(controller, until, seen=b""):
    """What the pty shows, read until the bytes until appear in it."""
    while until not in seen:
        assert select.select([controller], [], [], 60)[0], seen
        seen += os.read(controller, 4096)
    return seen


def drain(controller, seen):
    while select.select([controller], [], [], 0)[0]:
        try:
            data = os.read(controller, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    return seen


def big_folders(dovecot, user, folders):
    with dovecot.client(user) as client:
        for folder in folders:
            client.create_folder(folder)
            for number in range(3):
                client.append(folder, f"Subject: {number}\r\n\r\n".encode() + b"z" * 400_000)


def test_two_fetches_sharing_a_directory_draw_one_line(dovecot, new_user, tmp_path):
    """Two imap-fetch processes, --progress-dir alike, stderr on one pty: one line, the
    sums of both; once one has ended the other goes on drawing it, its counts kept."""
    user, _ = new_user("fs")
    big_folders(dovecot, user, ["A", "B"])
    env = dict(command_env(dovecot, user, tmp_path), TERM="xterm")
    shared = tmp_path / "shared"
    shared.mkdir()
    controller, terminal = pty.openpty()
    fetches = []
    for folder in ("A", "B"):
        listed = subprocess.run(["imap-list", folder], env=env, capture_output=True,
                                check=True).stdout
        fetch = subprocess.Popen(["imap-fetch", "--progress-dir", str(shared)], env=env,
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=terminal)
        fetch.stdin.write(listed)
        fetch.stdin.flush()
        fetches.append(fetch)
    os.close(terminal)
    seen = read_terminal(controller, b"\rFETCH A, B: 6/6 messages, 2.4/2.4 MB (100%), ")
    fetches[0].stdin.close()
    assert fetches[0].wait(60) == 0
    seen = read_terminal(controller, b"\rFETCH B: 6/6 messages, 2.4/2.4 MB (100%), ", seen)
    fetches[1].stdin.close()
    assert fetches[1].wait(60) == 0
    seen = drain(controller, seen)
    os.close(controller)
    assert b"\n" not in seen and seen.endswith(b"\r\x1b[K")
    for line in seen.split(b"\r")[1:]:
        assert line == b"\x1b[K" or re.fullmatch(
            rb"FETCH (A|A, B|B): \d/\d messages, [\d.]+/[\d.]+ MB \(\d+%\).*\x1b\[K", line), line


class HoldingProxy:
    """A loopback proxy to an IMAP server (no TLS) that holds back the EXAMINE of the
    folders held (and what follows it), until release(): the listings that go on to
    them stay open, so each imap-fetch has all the records of the folders before and
    waits for more.  (The LOGOUT at the end is not waited for: holding it would keep
    nothing open.)"""

    def __init__(self, port, held):
        self.port, self.released = port, threading.Event()
        self.held = {b'EXAMINE "%s"\r\n' % name.encode() for name in held}
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    def _up(self, client, server):
        with client.makefile("rb") as lines:
            for line in lines:
                if any(line.endswith(examine) for examine in self.held):
                    self.released.wait()
                server.sendall(line)
        server.shutdown(socket.SHUT_WR)

    def _down(self, server, client):
        try:
            while data := server.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        client.close()

    def release(self):
        self.released.set()
        self.listener.close()


def test_imapbackup_j2_on_a_terminal_draws_one_line_of_both(dovecot, new_user, tmp_path):
    """imapbackup -j 2 with stderr on a pty: the two pipelines' fetches share one line,
    rewritten with \\r, whose totals are those of both folders; the temporary directory
    they shared is gone after the run.  The pipelines list A and C, B and D; C and D are
    held, so that both are still fetching when A and B are in."""
    user, _ = new_user("fs")
    big_folders(dovecot, user, ["A", "B"])
    with dovecot.client(user) as client:
        for folder in ("C", "D"):
            client.create_folder(folder)
    proxy = HoldingProxy(dovecot.port, ["C", "D"])
    (tmp_path / "tmp").mkdir()
    env = dict(command_env(dovecot, user, tmp_path), TERM="xterm", IMAP_TLS="none",
               IMAP_SERVER=proxy.address, TMPDIR=str(tmp_path / "tmp"))
    controller, terminal = pty.openpty()
    run = subprocess.Popen(["imapbackup", "-v", "-j", "2", "-f", "A,B,C,D", "-d",
                            str(tmp_path / "backup")], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    try:
        seen = read_terminal(controller, b"\rFETCH A, B: 6/6 messages, 2.4/2.4 MB (100%), ")
    finally:
        proxy.release()
    assert run.wait(60) == 0
    seen = drain(controller, seen)
    os.close(controller)
    assert seen.count(b"| nice imap-fetch --progress-dir ") == 2
    progress = [part for line in seen.split(b"\n") for part in line.split(b"\r")[1:]
                if part.startswith(b"FETCH")]
    assert progress and all(re.match(rb"FETCH (A, B|A|B): \d/[1-6] messages", part)
                            for part in progress), progress
    assert b"SUMMARY: 4 folders, 6 messages appended" in seen
    assert list((tmp_path / "tmp").iterdir()) == []


def test_imapbackup_j2_draws_nothing_when_stderr_is_no_terminal(dovecot, new_user,
                                                               tmp_path):
    user, _ = new_user("fs")
    big_folders(dovecot, user, ["A", "B"])
    env = dict(command_env(dovecot, user, tmp_path), TERM="xterm")
    done = subprocess.run(["imapbackup", "-v", "-j", "2", "-f", "A,B", "-d",
                           str(tmp_path / "backup")], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    assert b"SUMMARY: 2 folders, 6 messages appended" in done.stderr
    assert b"--progress-dir" not in done.stderr
    assert b"\r" not in done.stderr and b"FETCH" not in done.stderr


def test_the_line_is_cut_to_the_terminal_width():
    """A line as wide as the terminal would wrap, and \\r would then redraw only its last
    row: it is cut to the width less one column."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 30, 0, 0))
    with os.fdopen(terminal, "w") as stream:
        progress = Progress("FETCH", enabled=True, stream=stream)
        progress.folder = "Personal/2005/Q3"
        progress._draw(progress.line())
        assert os.read(controller, 4096) == b"\rFETCH Personal/2005/Q3: 0/...\x1b[K"  # 29 columns
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        progress._draw(progress.line())
        assert os.read(controller, 4096) == b"\rFETCH Personal/2005/Q3: 0/0 messages, " \
                                            b"0.0/0.0 MB\x1b[K"
    os.close(controller)


def test_a_progress_dir_that_is_no_directory_is_a_usage_error(tmp_path):
    done = subprocess.run(["imap-fetch", "--progress-dir", str(tmp_path / "none")],
                          env=dict(os.environ, IMAP_SERVER="127.0.0.1:1",
                                   PATH=f"{os.path.dirname(sys.executable)}:/usr/bin:/bin"),
                          input=b"",
                          capture_output=True, timeout=60)
    assert (done.returncode, done.stdout) == (2, b"")
    assert done.stderr == f"imap-fetch: --progress-dir {tmp_path / 'none'}: not a " \
                          f"directory\n".encode()
