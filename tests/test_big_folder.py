"""A folder of 100,000 messages whose UIDs are near 2**32, so that a UID SEARCH ALL reply
would be one line of 1.1 MB, past imaplib's limit: imap-list lists it with short commands
and short response lines (FETCH by sequence number, 2000 at a time), in memory that does
not grow with the folder."""

import imaplib
import os
import subprocess
import sys

import orjson
from fake_imap import FakeIMAP

from imapstream.imap import store

FIRST_UID = 4_000_000_000
MESSAGE = b"Subject: one of many\r\nMessage-ID: <many@big>\r\n\r\nx\r\n"


def list_folder(server, folder):
    """Run the installed imap-list on folder: (its UIDs in output order, its peak RSS in
    bytes)."""
    script = os.path.join(os.path.dirname(sys.executable), "imap-list")
    child = subprocess.Popen([script, folder], env=dict(os.environ, **server.env()),
                             stdout=subprocess.PIPE)
    uids = [orjson.loads(line)["uid"] for line in child.stdout]
    child.stdout.close()
    _pid, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    assert child.returncode == 0
    return uids, usage.ru_maxrss * 1024


def test_a_folder_of_100000_messages():
    count = 100_000
    with FakeIMAP({"Small": [MESSAGE] * store.CHUNK, "Big": [MESSAGE] * count},
                  first_uid=FIRST_UID) as server:
        small_uids, small_rss = list_folder(server, "Small")
        big_uids, big_rss = list_folder(server, "Big")
    search_reply = b"* SEARCH" + b"".join(b" %d" % uid for uid in big_uids)
    assert len(search_reply) > imaplib._MAXLINE  # what this test guards against
    assert big_uids == list(range(FIRST_UID, FIRST_UID + count))
    assert small_uids == big_uids[:store.CHUNK]
    assert not any(b"SEARCH" in command for command in server.commands)
    assert max(len(command) for command in server.commands) < 200
    assert server.longest_line < 1000
    assert big_rss - small_rss < 10 << 20, (small_rss, big_rss)
