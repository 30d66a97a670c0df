"""TLS session resumption on a reconnect: the new connection of a process resumes the
session of its last one, where the server still knows it.  Dovecot knows it only in its
performance mode (service_count = 0: a login process serves many connections); by
default each connection has a login process, tickets and cache of its own.  Across
processes (imap-list, then imap-fetch) Python's ssl has no way to carry a session
(see imap/tls.py)."""

import os
import shutil
import tempfile

import pytest
import sample_mail
from conftest import command_env
from cutting_proxy import CuttingProxy
from dovecot import Dovecot

from imapstream.commands import imap_fetch
from imapstream.imap.store import Store

PERFORMANCE_MODE = """
service imap-login {
  service_count = 0
}
"""


@pytest.fixture(scope="module")
def resuming_server(dovecot, tmp_path_factory):
    directory = tempfile.mkdtemp(prefix="imapstream-dovecot-resume-")
    os.chmod(directory, 0o755)
    server = Dovecot(directory, PERFORMANCE_MODE)
    try:
        server.start()
        user, _password = server.new_user("fs")
        with server.client(user) as client:
            sample_mail.append_sample_mail(client)
        yield server, command_env(server, user, tmp_path_factory.mktemp("home"))
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("tls", ["imaps", "starttls"])
def test_a_reconnect_resumes_the_tls_session(resuming_server, monkeypatch, tls):
    server, env = resuming_server
    monkeypatch.setattr("imapstream.imap.session.BACKOFF_SECONDS", (0, 0, 0))
    port = server.ssl_port if tls == "imaps" else server.port
    with CuttingProxy(port, after_bytes=60_000, cuts=1) as proxy:
        for key in ("IMAP_USER", "IMAP_PASSWORD", "IMAP_CAFILE"):
            monkeypatch.setenv(key, env[key])
        monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
        monkeypatch.setenv("IMAP_TLS", tls)
        store = Store(imap_fetch.parser().parse_args([]), "imap-fetch")
        try:
            assert not store.session.client.socket().session_reused
            uids = [item.uid for item in store.listing(store.examine("INBOX"))]
            store.bodies.request("INBOX", uids)  # cut short on the way: a reconnect
            fetched = {}
            while len(store.bodies):
                fetched.update(store.bodies.answer().fetched)
            assert (store.reconnects, proxy.cuts_done) == (1, 1)
            assert store.session.client.socket().session_reused
            assert sorted(fetched) == sorted(uids) and uids
        finally:
            store.close()
