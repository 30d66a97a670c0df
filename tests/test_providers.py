"""What the big providers and other servers need of a client: TCP_NODELAY on every
connection, and the quirks no Dovecot shows (Yahoo's 10,000 messages a folder), played
by fake_imap."""

import socket

import pytest
from plumbing import run, serve

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list
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


def examine_showing(exists):
    """An EXAMINE handler that reports exists messages, as a server that shows only
    so many (fetching by sequence number beyond the folder's messages finds none)."""
    def answer(session, tag, args):
        session.selected = session.server.folder(args.split(b'"')[1])
        session.send(b"* %d EXISTS\r\n* OK [UIDVALIDITY 1130] ok\r\n* OK [UIDNEXT %d] ok\r\n"
                     b"%s OK [READ-ONLY] done\r\n" % (exists, exists + 1, tag))
    return {"EXAMINE": answer}


@pytest.mark.parametrize("exists", [9999, 10000, 10001])
def test_a_folder_that_shows_exactly_10000_messages_is_warned_about(monkeypatch, capsys,
                                                                    exists):
    """Yahoo (and AOL) show at most 10,000 messages of a folder over IMAP."""
    mailbox = {"INBOX": [b"Subject: 1\r\n\r\n1\r\n"], "Bulk": [b"Subject: 2\r\n\r\n2\r\n"]}
    with serve(monkeypatch, mailbox, handlers=examine_showing(exists)):
        status, out = run(imap_list, ["Bulk", "INBOX"])
    assert status == errors.OK and out.count(b'"uid":1,') == 2
    warned = [f"imap-list: {name}: the server shows exactly 10000 messages, as many as Yahoo "
              f"and AOL show of a folder over IMAP: it may hold more; move some to another "
              f"folder to back them up" for name in ("Bulk", "INBOX")]
    assert capsys.readouterr().err.splitlines() == (warned if exists == 10000 else [])


def test_the_token_command_runs_again_for_each_connection(monkeypatch, tmp_path):
    """Access tokens last an hour: after a drop, the session logs in again with a new
    token from --oauth2-token-command, not the one it first had (expired here)."""
    helper = tmp_path / "token-helper"
    helper.write_text('n=$(($(cat "$0.count" 2>/dev/null || echo 0) + 1))\n'
                      'echo "$n" >"$0.count"\necho "ya29.token-$n"\n')
    mailbox = {"INBOX": [b"Subject: 1\r\n\r\n1\r\n"]}
    dropped = []

    def expire_and_drop(session, tag, args):
        if not dropped:
            dropped.append(args)
            session.server.tokens["alice"] = "ya29.token-2"
            return False
        session.send(b"".join(r for _n, r in session.fetch(args, True)) + tag + b" OK done\r\n")
        return True

    with serve(monkeypatch, mailbox, tokens={"alice": "ya29.token-1"},
               handlers={"UID FETCH": expire_and_drop}) as server:
        monkeypatch.delenv("IMAP_PASSWORD")
        _status, listed = run(imap_list, ["INBOX", "--oauth2-token-command", f"sh {helper}"])
        helper.with_name("token-helper.count").write_text("0\n")
        server.tokens["alice"] = "ya29.token-1"
        status, out = run(imap_fetch, ["--oauth2-token-command", f"sh {helper}"], listed)
    assert status == errors.OK and out.endswith(b"Subject: 1\r\n\r\n1\r\n\n")
    assert [(mechanism, replies[0].split(b"auth=")[1]) for mechanism, replies
            in server.exchanges[1:]] == [("OAUTHBEARER", b"Bearer ya29.token-1\1\1"),
                                         ("OAUTHBEARER", b"Bearer ya29.token-2\1\1")]
