"""Folder announcements (imap-list --announce, imapstream(7)): written for the folders
whose status shows new mail as soon as the statuses come, passed on at once by mbox-ids,
and imap-fetch's cue to log in while the listings are still on their way, so that its
login overlaps imap-list's work; a run with nothing new writes none."""

import os
import re
import select
import subprocess
import sys
import time

from plumbing import append_all, one_line, pipeline, run
from trace_proxy import TraceProxy

from imapstream import errors
from imapstream.commands import imap_list

BIN = os.path.dirname(sys.executable)
INBOX = b'{"folder":"INBOX","delimiter":"/","announce":true}\n'


def mail(n):
    return b"Subject: %d\r\nMessage-ID: <announce-%d@x>\r\n\r\nbody %d\r\n" % (n, n, n)


def listed(directory):
    status, out = run(imap_list, ["--all", "--since", str(directory), "--announce"])
    assert status == errors.OK
    return out.splitlines(keepends=True)


def test_only_folders_with_new_mail_are_announced_before_any_listing(account, tmp_path):
    account.create_folder("Sent")
    append_all(account, "INBOX", [mail(1)])
    append_all(account, "Sent", [mail(2)])
    account.create_folder("Empty")
    first = listed(tmp_path)  # no checkpoints yet: the folders with messages
    assert sorted(first[:2]) == [INBOX, INBOX.replace(b"INBOX", b"Sent")]
    assert not any(b'"announce"' in line for line in first[2:])
    assert pipeline(str(tmp_path), "--since", str(tmp_path)) == [0, 0, 0, 0]
    assert not any(b'"announce"' in line for line in listed(tmp_path))  # nothing new
    append_all(account, "INBOX", [mail(3)])
    account.select_folder("Sent")
    account.add_flags([1], [b"\\Flagged"])  # a change, but no new mail
    account.unselect_folder()
    lines = listed(tmp_path)
    assert lines[0] == INBOX
    assert [line for line in lines if b'"announce"' in line] == [INBOX]
    assert any(b'"uid":2' in line for line in lines[1:])


def test_announce_needs_since(account, capsys):
    assert run(imap_list, ["--all", "--announce"])[0] == errors.USAGE
    assert one_line(capsys) == "imap-list: --announce needs --since\n"


def read_line(pipe, seconds=30):
    """The next line the process writes to pipe, or b"" if none comes in time."""
    ready, _, _ = select.select([pipe], [], [], seconds)
    return pipe.readline() if ready else b""


def test_mbox_ids_passes_an_announcement_on_at_once(tmp_path):
    ids = subprocess.Popen([os.path.join(BIN, "mbox-ids"), "--missing", "-d", str(tmp_path)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    ids.stdin.write(INBOX)
    ids.stdin.flush()
    assert read_line(ids.stdout) == INBOX  # while its input is still open
    ids.stdin.close()
    assert ids.stdout.read() == b"" and ids.wait(30) == 0


def logins(dovecot, user):
    return len(re.findall(rf"Login: user=<{user}>", dovecot.log.read_text()))


def test_imap_fetch_logs_in_on_an_announcement_before_any_message(dovecot, account, tmp_path):
    append_all(account, "INBOX", [mail(1)])
    user = os.environ["IMAP_USER"]
    _, record = run(imap_list, ["INBOX"])
    before = logins(dovecot, user)
    fetch = subprocess.Popen([os.path.join(BIN, "imap-fetch"), "--no-progress"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    fetch.stdin.write(INBOX)
    fetch.stdin.flush()
    deadline = time.monotonic() + 30
    while logins(dovecot, user) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert logins(dovecot, user) == before + 1  # no message record given yet
    out, _ = fetch.communicate(record, timeout=60)
    assert fetch.returncode == 0
    assert out.startswith(record.rstrip(b"}\n")) and b"Message-ID: <announce-1@x>" in out
    assert b'"announce"' not in out and logins(dovecot, user) == before + 1


def test_imap_fetch_logs_in_while_imap_list_lists(dovecot, account, tmp_path, outward):
    """Through a proxy that holds what the server sends 0.2 s, across the outward
    address (as a network): imap-fetch's connection opens before imap-list's ends."""
    append_all(account, "INBOX", [mail(1)])
    assert pipeline(str(tmp_path), "--since", str(tmp_path)) == [0, 0, 0, 0]
    append_all(account, "INBOX", [mail(2)])
    command = ("imap-list --all --since \"$1\" --announce | mbox-ids --missing -d \"$1\" | "
                "imap-fetch --no-progress | mbox-merge -d \"$1\"")
    with TraceProxy(dovecot.port, delay=0.2, host=outward) as proxy:
        env = dict(os.environ, IMAP_SERVER=f"{outward}:{proxy.port}",
                   PATH=os.pathsep.join([BIN, os.environ["PATH"]]))
        done = subprocess.run(["sh", "-c", command, "sh", str(tmp_path)], env=env,
                              timeout=120, capture_output=True)
        assert done.returncode == 0, done.stderr
        proxy.round_trips()  # every connection closed
        opened, closed = {}, {}
        for connection, direction, when, _data in proxy.events:
            opened.setdefault(connection, when)
            if direction == "closed":
                closed[connection] = when
    assert sorted(opened) == [1, 2]
    assert opened[2] < closed[1]
    assert (tmp_path / "INBOX.mbox").read_bytes().count(b"Message-ID: <announce-") == 2
