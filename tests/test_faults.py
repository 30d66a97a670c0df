"""Faults: cut connections, a stalled server, a full disk.  Whatever happens, every mbox
stays readable and a rerun completes the backup with nothing lost or doubled."""

import os
import socket
import subprocess
import threading

import pytest
from cutting_proxy import CuttingProxy
from plumbing import append_all, backup, backup_messages, run, server_messages

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_merge
from imapstream.imap import connection

BIG = [b"Subject: big %d\r\nMessage-ID: <big%d@x>\r\n\r\n" % (n, n) + b"x" * 76 + b"\r\n"
       for n in range(24)]


def test_imap_fetch_resumes_after_four_cuts(dovecot, account, monkeypatch, tmp_path, capsys):
    messages = [m[:-2] + (b"y" * 78 + b"\r\n") * 4000 for m in BIG]  # ~320 kB each
    append_all(account, "INBOX", messages)
    _, listed = run(imap_list, ["INBOX"])
    proxy = CuttingProxy(dovecot.port, after_bytes=1_500_000, cuts=4)
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
    monkeypatch.setattr("imapstream.imap.session.BACKOFF_SECONDS", (0, 0, 0))
    try:
        status, stream = run(imap_fetch, [], listed)
    finally:
        proxy.close()
    assert proxy.cuts_done == 4
    assert status == errors.OK, capsys.readouterr().err
    assert capsys.readouterr().err.count("reconnecting") == 4
    assert run(mbox_merge, ["-d", str(tmp_path)], stream)[0] == errors.OK
    assert backup_messages(str(tmp_path)) == server_messages(account)


def test_a_link_that_keeps_failing_ends_with_a_clear_error(dovecot, account, monkeypatch,
                                                          capsys):
    append_all(account, "INBOX", BIG)
    _, listed = run(imap_list, ["INBOX"])
    proxy = CuttingProxy(dovecot.port, after_bytes=1200, cuts=100)
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
    monkeypatch.setattr("imapstream.imap.session.BACKOFF_SECONDS", (0, 0, 0))
    try:
        status, _ = run(imap_fetch, [], listed)
    finally:
        proxy.close()
    assert status == errors.TEMPFAIL
    assert capsys.readouterr().err.splitlines()[-1].startswith("imap-fetch: connection lost")


def test_a_stalled_server_hits_the_timeout(account, monkeypatch, capsys):
    silent = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: held.append(silent.accept()), daemon=True).start()
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setenv("IMAP_TLS", "none")
    try:
        assert run(imap_list, ["-t", "1"])[0] == errors.TEMPFAIL
    finally:
        silent.close()
    assert capsys.readouterr().err == "imap-list: timed out waiting for the server\n"


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (root only): a disk that really fills up, so writes fail with
    ENOSPC; remount(size) gives it more room."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                                            str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")

    def remount(size):
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)

    yield disk, remount
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_leaves_the_mbox_intact(account, small_disk, capsys):
    disk, remount = small_disk
    messages = [m[:-2] + b"z" * 20000 + b"\r\n" for m in BIG]
    append_all(account, "INBOX", messages[:4])
    assert backup(str(disk))[0] == (0, 0, 0, 0)
    before = (disk / "INBOX.mbox").read_bytes()
    append_all(account, "INBOX", messages[4:])
    capsys.readouterr()
    statuses, _, _ = backup(str(disk))
    assert statuses[3] == errors.IOERR
    err = capsys.readouterr().err
    assert err == f"mbox-merge: {disk / 'INBOX.mbox'}: no space left on device\n"
    assert (disk / "INBOX.mbox").read_bytes() == before
    remount("4m")
    assert backup(str(disk))[0] == (0, 0, 0, 0)
    assert backup_messages(str(disk)) == server_messages(account)


def test_a_uidvalidity_changed_across_a_reconnect_fails_the_folder(dovecot, account,
                                                                   monkeypatch, capsys):
    """The connection drops mid-FETCH and the folder gets a new UIDVALIDITY before the
    reconnect: the UIDs fetched on would name other messages, so the folder fails."""
    append_all(account, "INBOX", [m[:-2] + (b"y" * 78 + b"\r\n") * 4000 for m in BIG[:8]])
    _, listed = run(imap_list, ["INBOX"])
    proxy = CuttingProxy(dovecot.port, after_bytes=1_000_000, cuts=1)
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
    monkeypatch.setattr("imapstream.imap.session.BACKOFF_SECONDS", (0, 0, 0))
    connect, user = connection.connect, os.environ["IMAP_USER"]

    def renumbered_while_down(options):
        if proxy.cuts_done:
            dovecot.doveadm("mailbox", "update", "--uid-validity", "4242", "-u", user, "INBOX")
        return connect(options)

    monkeypatch.setattr(connection, "connect", renumbered_while_down)
    try:
        status, stream = run(imap_fetch, [], listed)
    finally:
        proxy.close()
    assert proxy.cuts_done == 1
    assert status == errors.PARTIAL
    err = capsys.readouterr().err
    assert "imap-fetch: INBOX: UIDVALIDITY changed while reconnecting; list it again\n" in err
    assert stream.count(b'"uidvalidity":4242') == 0
    assert stream.count(b'"length":') == 0  # the batch the cut broke
