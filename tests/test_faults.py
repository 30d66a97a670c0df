"""Faults: cut connections, a stalled server, a full disk.  Whatever happens, every mbox
stays readable and a rerun completes the backup with nothing lost or doubled."""

import os
import socket
import threading

import pytest
from cutting_proxy import CuttingProxy
from plumbing import append_all, backup, backup_messages, run, server_messages

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_merge

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


@pytest.mark.skipif(os.geteuid() != 0 and not os.path.exists("/bin/mount"),
                    reason="needs a small tmpfs")
def test_a_file_at_its_size_limit_is_left_intact(account, tmp_path, capsys):
    import resource
    messages = [m[:-2] + b"z" * 20000 + b"\r\n" for m in BIG]
    append_all(account, "INBOX", messages[:4])
    backup(str(tmp_path))
    before = (tmp_path / "INBOX.mbox").read_bytes()
    append_all(account, "INBOX", messages[4:])
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Writes past a file-size limit fail with EFBIG: that file's folder fails alone.
    import signal
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 150_000, hard))
    try:
        statuses, _, _ = backup(str(tmp_path))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert statuses[3] == errors.PARTIAL
    assert capsys.readouterr().err.count("mbox-merge: ") == 1
    assert (tmp_path / "INBOX.mbox").read_bytes() == before
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    assert backup_messages(str(tmp_path)) == server_messages(account)
