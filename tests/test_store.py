"""The store layer (imap/store.py) and the one failure taxonomy (errors.py): a failure is
retried exactly when it is reported as temporary (exit 75), and imap-append, which now
reconnects, never appends a message twice across a dropped connection."""

import imaplib
import io
import socket
import ssl

import pytest
from cutting_proxy import CuttingProxy
from imapclient import exceptions as imap_errors
from plumbing import AWKWARD, run, server_messages

from imapstream import errors
from imapstream.commands import imap_append
from imapstream.imap import session as session_module
from imapstream.imap.transport import Client
from imapstream.message import to_lf
from imapstream.stream import write_message

TAXONOMY = [  # (failure, exit status it is reported with)
    (ConnectionResetError(104, "Connection reset by peer"), errors.TEMPFAIL),
    (BrokenPipeError(32, "Broken pipe"), errors.TEMPFAIL),
    (EOFError(), errors.TEMPFAIL),
    (TimeoutError("timed out"), errors.TEMPFAIL),
    (imaplib.IMAP4.abort("socket error: EOF"), errors.TEMPFAIL),
    (imap_errors.IMAPClientAbortError("BYE shutting down"), errors.TEMPFAIL),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), errors.TEMPFAIL),
    (errors.ConnectTimeout("timed out connecting to x port 993"), errors.TEMPFAIL),
    (ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC]"), errors.UNAVAILABLE),
    (errors.ConnectRefused("x port 993 refused the connection"), errors.UNAVAILABLE),
    (ConnectionRefusedError(111, "Connection refused"), errors.UNAVAILABLE),
    (socket.gaierror(-2, "Name or service not known"), errors.UNAVAILABLE),
    (imap_errors.ProtocolError("bad"), errors.UNAVAILABLE),
    (imap_errors.LoginError("AUTHENTICATIONFAILED"), errors.NOPERM),
    (imaplib.IMAP4.error("NO [NONEXISTENT] Mailbox doesn't exist"), errors.PARTIAL),
    (errors.ServerError("INBOX: refused"), errors.PARTIAL),
    (OSError(28, "No space left on device"), errors.IOERR),
    (ValueError("a bug"), errors.SOFTWARE),
]


@pytest.mark.parametrize("failure, status", TAXONOMY, ids=lambda v: type(v).__name__)
def test_one_taxonomy_chooses_the_exit_status_and_the_retry(failure, status):
    assert errors.describe(failure)[1] == status
    assert errors.transient(failure) is (status == errors.TEMPFAIL)


@pytest.mark.parametrize("failure, status", TAXONOMY, ids=lambda v: type(v).__name__)
def test_the_session_retries_exactly_the_temporary_failures(dovecot, account, monkeypatch,
                                                            capsys, failure, status):
    """A failure the session reconnects after is one reported as exit 75 when it
    persists, and no other: an SSLError was once retried, then reported as exit 69."""
    monkeypatch.setattr(session_module, "BACKOFF_SECONDS", (0,))
    session = session_module.Session(store_options(), "test")
    calls = []

    def operation(client):
        calls.append(client)
        if len(calls) == 1:
            raise failure
        return client.noop()

    try:
        session.call(operation)
    except Exception as exc:  # the failure itself, or ServerError for an IMAP refusal
        assert status != errors.TEMPFAIL and errors.describe(exc)[1] == status
    else:
        assert status == errors.TEMPFAIL
    finally:
        session.close()
    assert (len(calls), session.reconnects) == ((2, 1) if status == errors.TEMPFAIL else (1, 0))
    assert ("reconnecting" in capsys.readouterr().err) is (status == errors.TEMPFAIL)


def store_options():
    return imap_append.parser().parse_args(["INBOX"])


def frame(record, data):
    out = io.BytesIO()
    write_message(out, record, data)
    return out.getvalue()


@pytest.mark.parametrize("upstream, at", [(False, (b"Append completed", 0)),
                                          (True, (b"APPEND", 80))],
                         ids=["after-the-server-appended", "in-the-middle-of-the-command"])
def test_a_restore_across_cuts_appends_each_message_once(dovecot, account, monkeypatch,
                                                        capsys, upstream, at):
    """Three connections cut, each at its first APPEND: just before the server's OK (the
    messages arrived, the client does not know) or in the middle of the literal (none
    arrived).  imap-append lists the folder again and sends only what did not arrive."""
    held = b"Subject: held\r\nMessage-ID: <held@x>\r\n\r\nalready there\r\n"
    account.append("INBOX", held)
    messages = AWKWARD + [held, held, AWKWARD[1]]
    stream = b"".join(frame({"folder": folder, "flags": ["\\Seen"]}, data)
                      for folder in ("INBOX", "Restored") for data in messages)
    proxy = CuttingProxy(dovecot.port, cuts=3, at=at, upstream=upstream)
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
    monkeypatch.setenv("IMAP_TLS", "none")
    monkeypatch.setattr(session_module, "BACKOFF_SECONDS", (0, 0, 0))
    monkeypatch.setattr(imap_append, "BATCH_MESSAGES", 4)
    try:
        status, _ = run(imap_append, ["--from-stream"], stream)
    finally:
        proxy.close()
    assert status == errors.OK, capsys.readouterr().err
    assert proxy.cuts_done == 3
    assert capsys.readouterr().err.count("; reconnecting") == 3
    restored = sorted((to_lf(data), ["\\Seen"]) for data in messages)
    inbox = list(restored)
    inbox[inbox.index((to_lf(held), ["\\Seen"]))] = (to_lf(held), [])  # the one held
    assert server_messages(account) == {"INBOX": sorted(inbox), "Restored": restored}


def test_an_append_to_a_connection_that_keeps_closing_ends_with_exit_75(dovecot, account,
                                                                      monkeypatch, capsys):
    """Writing the literal of an APPEND to a closed connection (EPIPE, which imapclient
    meets on its own send, not imaplib's) is a lost connection: retried, then exit 75
    with its line; never the silent exit 141 of a closed standard output."""
    real = Client.append_exact

    def closed(client, folder, items):
        client.has_capability("LITERAL+")  # known: the first write is the APPEND's
        client.socket().shutdown(socket.SHUT_WR)
        return real(client, folder, items)

    monkeypatch.setattr(Client, "append_exact", closed)
    monkeypatch.setattr(session_module, "BACKOFF_SECONDS", (0, 0, 0))
    status, _ = run(imap_append, ["--from-stream"], frame({"folder": "INBOX"}, AWKWARD[1]))
    err = capsys.readouterr().err
    assert status == errors.TEMPFAIL, err
    assert err.count("; reconnecting") == session_module.RETRIES
    assert err.splitlines()[-1].startswith("imap-append: connection lost")
