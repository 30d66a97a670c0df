"""imap-fetch's progress line: the folder, messages and bytes done of the totals the
records give, rate and ETA, redrawn on a terminal while a large message arrives."""

import os
import pty
import select
import subprocess

from conftest import command_env

from imapstream.progress import Progress


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
