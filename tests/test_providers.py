"""What the big providers and other servers need of a client: TCP_NODELAY on every
connection, and the quirks no Dovecot shows (Yahoo's 10,000 messages a folder), played
by fake_imap."""

import socket

import pytest
from plumbing import serve

from imapstream.commands import imap_fetch
from imapstream.imap import connection


def nodelay(client):
    return client.socket().getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.mark.parametrize("tls", ["none", "imaps", "starttls"])
def test_every_connection_sets_tcp_nodelay(dovecot, account, monkeypatch, tls):
    """Without it, each piece of a command sent apart (an APPEND literal without
    LITERAL+) waits for the server's delayed ACK, about 40 ms (Nagle's algorithm)."""
    port = dovecot.ssl_port if tls == "imaps" else dovecot.port
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{port}")
    options = imap_fetch.parser().parse_args(["--tls", tls, "--cafile", str(dovecot.cafile)])
    client = connection.connect(options)
    try:
        assert nodelay(client)
    finally:
        connection.logout(client)


def test_a_reconnected_session_sets_tcp_nodelay(monkeypatch):
    from imapstream.imap.session import Session

    with serve(monkeypatch, {"INBOX": []}):
        session = Session(imap_fetch.parser().parse_args([]), "imap-fetch")
        session.client.shutdown()
        session.client = None
        assert session.call(nodelay)
        session.close()
