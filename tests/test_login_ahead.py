"""Commands sent before the login is answered (imapstream/imap/logins.py): imap-list's
ENABLE and LIST-STATUS behind LOGIN, in the form LIST_AHEAD assumes; on a server that
offers less they are answered, dropped and asked again as it takes them; never behind
AUTHENTICATE; a refused login says only the refusal.  Against the scripted server, which
answers commands in the order they come and records them (round trips over STARTTLS:
test_round_trips.py)."""

import orjson
import pytest
from fake_imap import FakeIMAP, speaking_tls
from plumbing import one_line, run

from imapstream import errors
from imapstream.commands import imap_list
from imapstream.imap import auth

AHEAD = b'LIST "" "*" RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY ' \
        b'HIGHESTMODSEQ))'
MAILBOX = {"INBOX": [b"Subject: a\r\n\r\nx\r\n"], "Sent": []}


def use(monkeypatch, server, **extra):
    monkeypatch.delenv("IMAP_CAFILE", raising=False)
    for key, value in dict(server.env(), **{"IMAP_TLS": "none", **extra}).items():
        monkeypatch.setenv(key, value)


def records(out):
    return [orjson.loads(line) for line in out.splitlines()]


def sent(server):
    """The command names and arguments the server received after the CAPABILITY its
    greeting calls for, tags left out."""
    commands = [command.split(b" ", 1)[1] for command in server.commands]
    assert commands[0] == b"CAPABILITY"
    return commands[1:]


def test_commands_behind_login_the_server_lacks_are_dropped_and_asked_again(monkeypatch):
    """LOGIN (the only mechanism offered), ENABLE QRESYNC and the LIST-STATUS of
    LIST_AHEAD in one go; the login's OK says no capabilities, so CAPABILITY follows
    while they are answered; the server offers neither, so the LIST's answer is dropped
    and a plain LIST and STATUS list the folders, each once."""
    with FakeIMAP(dict(MAILBOX), capabilities=("IMAP4rev1",)) as server:
        use(monkeypatch, server)
        status, out = run(imap_list, [])
    assert status == errors.OK
    commands = sent(server)
    assert commands[:5] == [b'LOGIN alice "Fake-pass-13"', b"ENABLE QRESYNC", AHEAD,
                            b"CAPABILITY", b'LIST "" "*"']
    assert [c.split(b" ")[0] for c in commands[5:]] == [b"STATUS", b"STATUS", b"LOGOUT"]
    assert out.count(b'"folder"') == 2 and b'"messages":1' in out


def test_a_refused_login_with_commands_behind_it_says_only_the_refusal(monkeypatch, capsys):
    with FakeIMAP(dict(MAILBOX), capabilities=("IMAP4rev1",)) as server:
        use(monkeypatch, server, IMAP_PASSWORD="not-the-pass-9")
        assert run(imap_list, [])[0] == errors.NOPERM
    assert one_line(capsys) == ("imap-list: login as alice on 127.0.0.1 failed: "
                                "[AUTHENTICATIONFAILED] Authentication failed.\n")
    assert sent(server) == [b'LOGIN alice "not-the-pass-9"', b"ENABLE QRESYNC", AHEAD]


@pytest.mark.parametrize("initial", [False, True])
def test_nothing_goes_behind_authenticate(monkeypatch, initial):
    """A server that offers AUTH=PLAIN without TLS, with or without SASL-IR:
    AUTHENTICATE, answered, before the first command of the session (CAPABILITY, as its
    OK says none); and no LIST-STATUS, which it does not offer."""
    capabilities = ("IMAP4rev1", "AUTH=PLAIN", *(["SASL-IR"] if initial else []))
    with FakeIMAP(dict(MAILBOX), capabilities=capabilities) as server:
        use(monkeypatch, server)
        assert run(imap_list, [])[0] == errors.OK
    commands = sent(server)
    assert commands[0].startswith(b"AUTHENTICATE PLAIN")
    assert commands[1:3] == [b"CAPABILITY", b'LIST "" "*"']
    assert server.exchanges == [["PLAIN", [b"\0alice\0Fake-pass-13"]]]


@pytest.mark.parametrize("capabilities, ahead", [
    ([b"IMAP4REV1", b"SASL-IR", b"AUTH=PLAIN", b"STARTTLS"], (b"LOGIN",)),
    ([b"IMAP4REV1", b"SASL-IR", b"AUTH=PLAIN", b"LOGINDISABLED"], (b"AUTHENTICATE", b"PLAIN")),
    ([b"IMAP4REV1", b"AUTH=PLAIN", b"LOGINDISABLED"], ()),  # two steps without SASL-IR
    ([b"IMAP4REV1", b"STARTTLS", b"LOGINDISABLED"], ()),  # nothing to log in with yet
])
def test_the_login_sent_ahead_of_the_capabilities_over_tls(capabilities, ahead):
    """auth.ahead: the one-command login the capabilities said before TLS choose, LOGIN
    where commands are to follow it."""
    command = auth.ahead(capabilities, None, "alice", 'p"w\\', "h", 143, pipelined=True)
    assert tuple(word.encode() if isinstance(word, str) else word
                 for word in command[:len(ahead)]) == ahead
    if ahead == (b"LOGIN",):
        assert command == ("LOGIN", "alice", '"p\\"w\\\\"')
    elif ahead:
        assert command[2] == b"AGFsaWNlAHAid1w="  # base64 of \0alice\0p"w\


def test_the_mechanism_with_commands_behind_the_login():
    offered = [b"IMAP4REV1", b"AUTH=PLAIN", b"AUTH=CRAM-MD5"]
    assert auth.choose(offered, True, None, False, "h", pipelined=True) == "login"
    assert auth.choose(offered, True, None, False, "h") == "plain"
    assert auth.choose(offered, False, None, False, "h", pipelined=True) == "cram-md5"
    assert auth.choose([*offered, b"LOGINDISABLED"], True, None, False, "h",
                       pipelined=True) == "plain"
    assert auth.choose(offered, True, "plain", False, "h", pipelined=True) == "plain"


def test_a_login_sent_ahead_that_tls_refuses_is_chosen_again(dovecot, monkeypatch):
    """Before TLS the server allows LOGIN; over TLS it says LOGINDISABLED and AUTH=PLAIN
    (a test server speaking STARTTLS with the Dovecot fixture's certificate).  The LOGIN
    sent with the CAPABILITY over TLS is refused (and so would be the commands behind
    it, but this server answers them), and AUTHENTICATE PLAIN, chosen from what the
    server says over TLS, logs in."""
    starttls = speaking_tls(dovecot.cafile, dovecot.keyfile,
                            ("IMAP4rev1", "AUTH=PLAIN", "LOGINDISABLED"))

    def login(session, tag, _args):
        session.send(tag + b" NO [PRIVACYREQUIRED] LOGIN is disabled\r\n")

    with FakeIMAP(dict(MAILBOX), capabilities=("IMAP4rev1", "STARTTLS"),
                  handlers={"STARTTLS": starttls, "LOGIN": login}) as server:
        use(monkeypatch, server, IMAP_TLS="starttls", IMAP_CAFILE=str(dovecot.cafile))
        status, out = run(imap_list, [])
    assert status == errors.OK
    assert sent(server)[:7] == [b"STARTTLS", b"CAPABILITY", b'LOGIN alice "Fake-pass-13"',
                                b"ENABLE QRESYNC", AHEAD, b"AUTHENTICATE PLAIN", b"CAPABILITY"]
    assert server.exchanges == [["PLAIN", [b"\0alice\0Fake-pass-13"]]]
    assert out.count(b'"folder"') == 2


def test_a_listing_sent_ahead_in_another_form_than_the_server_takes_is_dropped(monkeypatch):
    """A server with LIST-STATUS and CONDSTORE but not SPECIAL-USE, which answers the
    listing sent ahead all the same (with \\Sent): that answer is dropped, and the
    LIST-STATUS it takes lists the folders, none of them special."""

    def list_status(session, tag, args):
        special = b"SPECIAL-USE" in args
        for name in session.server.mailbox:
            flags = b"\\HasNoChildren" + (b" \\Sent" if special and name == "Sent" else b"")
            session.send(b'* LIST (%s) "/" %s\r\n' % (flags, name.encode()))
            if b"STATUS" in args:
                session.send(b"* STATUS %s (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 7"
                             b" HIGHESTMODSEQ 1)\r\n" % name.encode())
        session.send(tag + b" OK done\r\n")

    with FakeIMAP(dict(MAILBOX), capabilities=("IMAP4rev1", "LIST-STATUS", "CONDSTORE"),
                  handlers={"LIST": list_status}) as server:
        use(monkeypatch, server)
        status, out = run(imap_list, [])
    assert status == errors.OK
    assert sent(server)[1:5] == [b"ENABLE QRESYNC", AHEAD, b"CAPABILITY",
                                 b'LIST "" "*" RETURN (CHILDREN STATUS (MESSAGES UIDNEXT '
                                 b'UIDVALIDITY HIGHESTMODSEQ))']
    assert [(r["folder"], r["special_use"]) for r in records(out)] == [
        ("INBOX", None), ("Sent", None)]
