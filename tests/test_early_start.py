"""What a command does while it starts (issue 13): imap-list and imap-fetch dial the
server before they load the IMAP and TLS libraries (imapstream/imap/dial.py), and the
connection they make takes that socket, one TCP connection per command as before, and
over STARTTLS the answer to the STARTTLS the dial sent; a socket that waited too long is
closed unused.  A reader of records loads orjson while
its input is still on its way (records.py); a console script ends without the
interpreter's teardown, its output flushed (cli.entry_point)."""

import os
import re
import subprocess
import sys
import threading
import time

import pytest
from fake_imap import CAPABILITIES, FakeIMAP, speaking_tls
from plumbing import append_all, one_line, run
from trace_proxy import TraceProxy

from imapstream import errors, records
from imapstream.commands import imap_fetch, imap_list
from imapstream.imap import dial

ORDER = """
import sys
from imapstream.imap import dial

dialled = []


class Noted(dial.Dial):
    def __init__(self, address, *args):
        dialled.append(list(address))
        super().__init__(address, *args)


dial.Dial = Noted
at_import = []
sys.addaudithook(lambda event, args: at_import.append(list(dialled))
                 if event == "import" and args[0] == "imapclient" else None)
from imapstream.commands import {command} as command

status = command.main(sys.argv[1:], sys.stdin.buffer, open("/dev/null", "wb"))
print(status, at_import[0] if at_import else None)
"""


def client_bytes(proxy, connection):
    return b"".join(data for number, direction, _time, data in proxy.events
                    if number == connection and direction == "c")


def listed_inbox(account):
    append_all(account, "INBOX", [b"Subject: early\r\nMessage-ID: <early@x>\r\n\r\nb\r\n"])
    status, out = run(imap_list, ["INBOX"])
    assert status == errors.OK
    return out


def test_imap_list_and_imap_fetch_dial_before_they_load_imapclient(dovecot, account):
    server = os.environ["IMAP_SERVER"].split(":")
    for command, argv, stdin in (("imap_list", [], b""),
                                 ("imap_fetch", [], listed_inbox(account))):
        shown = subprocess.run([sys.executable, "-c", ORDER.format(command=command), *argv],
                               input=stdin, capture_output=True, check=True)
        assert shown.stdout.decode() == f"0 {[[server[0], int(server[1])]]}\n", shown.stderr


def test_the_connection_takes_the_socket_dialled_early(dovecot, account, monkeypatch,
                                                       outward):
    """One connection per command, and over it one STARTTLS: across a network the
    dial's, sent as soon as it connected, whose answer the connection reads instead of
    sending its own; on loopback the connection's, after the greeting (the rest is
    TLS)."""
    listing = listed_inbox(account)
    for host, first in (("127.0.0.1", rb"[A-Z]{4}\d+ STARTTLS\r\n"),
                        (outward, rb"dial STARTTLS\r\n")):
        for module, stdin in ((imap_list, b""), (imap_fetch, listing)):
            with TraceProxy(dovecot.port, delay=0, host=host) as proxy:
                monkeypatch.setenv("IMAP_SERVER", f"{host}:{proxy.port}")
                status, out = run(module, [], stdin)
                assert status == errors.OK
                proxy.round_trips()  # every connection closed
                assert proxy.number == 1
                sent = client_bytes(proxy, 1)
                assert re.match(first, sent) and sent.count(b"STARTTLS") == 1
            if module is imap_fetch:
                assert b"Message-ID: <early@x>" in out


def test_a_socket_dialled_too_long_ago_is_closed_unused(dovecot, account, monkeypatch):
    monkeypatch.setattr(dial, "FRESH", -1.0)  # every dialled socket is stale when taken
    with TraceProxy(dovecot.port, delay=0) as proxy:
        monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
        status, out = run(imap_list, [])
        assert status == errors.OK and b'"INBOX"' in out
        proxy.round_trips()
        assert proxy.number == 2
        # the dialled one may still be connecting when the command dials again: either
        # comes first
        unused, used = sorted((client_bytes(proxy, 1), client_bytes(proxy, 2)), key=len)
        assert unused in (b"", b"dial STARTTLS\r\n") and b"STARTTLS" in used


@pytest.mark.parametrize("greeting, capabilities, said", [
    (b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] fake IMAP ready", CAPABILITIES,
     "refused STARTTLS: NO [UNAVAILABLE] TLS is out of order today"),
    (b"* OK fake IMAP ready", CAPABILITIES,
     "refused STARTTLS: NO [UNAVAILABLE] TLS is out of order today"),
    (b"* OK fake IMAP ready", ("IMAP4rev1", "AUTH=PLAIN"),
     "does not offer STARTTLS; refusing to log in without TLS (use --tls none to allow it)")])
def test_a_starttls_the_dial_sent_and_the_server_refused_is_refused_as_ever(
        monkeypatch, capsys, outward, greeting, capabilities, said):
    """A server that refuses STARTTLS: the dial's is the only one, its refusal the one
    line the command says (exit 69), and no login follows; after a greeting without
    capabilities they are asked in plain text, to say whether STARTTLS is offered."""
    with FakeIMAP(greeting=greeting, capabilities=capabilities, host=outward) as server:
        for key, value in dict(server.env(), IMAP_TLS="starttls").items():
            monkeypatch.setenv(key, value)
        assert run(imap_list, [])[0] == errors.UNAVAILABLE
    assert [c.split(b" ", 1)[1] for c in server.commands] == (
        [b"STARTTLS"] if b"CAPABILITY" in greeting else [b"STARTTLS", b"CAPABILITY"])
    assert server.commands[0] == b"dial STARTTLS"
    assert one_line(capsys) == f"imap-list: {outward} {said}\n"


def test_a_greeting_without_capabilities_and_the_starttls_sent_before_it(dovecot,
                                                                         monkeypatch, outward):
    """The dial's STARTTLS goes out before the greeting comes, so no command can go
    before its answer: the capabilities are asked over TLS, or, where a second greeting
    says them first (Dovecot's, while its login process waits for its auth process), are
    that greeting's, and the LOGIN goes with the CAPABILITY over TLS: a round trip less."""
    second = b"* OK Waiting for authentication process to respond..\r\n" \
             b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready"
    trips = []
    for greeting in (b"* OK fake IMAP ready", second):
        with FakeIMAP({"INBOX": []}, greeting=greeting, capabilities=("IMAP4rev1", "STARTTLS"),
                      handlers={"STARTTLS": speaking_tls(dovecot.cafile, dovecot.keyfile)}
                      ) as server, TraceProxy(server.port, delay=0.05, host=outward) as proxy:
            for key, value in dict(server.env(), IMAP_SERVER=f"{outward}:{proxy.port}",
                                   IMAP_TLS="starttls", IMAP_CAFILE=str(dovecot.cafile)).items():
                monkeypatch.setenv(key, value)
            status, out = run(imap_list, [])
            assert status == errors.OK and b'"INBOX"' in out
            trips.append(proxy.round_trips())
        assert server.commands[0] == b"dial STARTTLS"
        assert [c.split(b" ", 1)[1] for c in server.commands[1:3]] == [
            b"CAPABILITY", b'LOGIN alice "Fake-pass-13"']
    assert trips[1] == trips[0] - 1


def test_an_error_before_the_login_does_not_wait_for_the_dial(monkeypatch, tmp_path):
    """A server that does not answer: imap-list's dial is still connecting when it finds
    that no user is given, and says so at once; the dial closes its socket when the
    connect ends."""
    release, made = threading.Event(), []

    class Socket:
        closed = False

        def close(self):
            self.closed = True

    def connecting(address, timeout):
        release.wait(60)
        made.append(Socket())
        return made[-1]

    monkeypatch.setattr(dial.socket, "create_connection", connecting)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc to name a user
    monkeypatch.delenv("IMAP_USER", raising=False)
    said = []
    listing = threading.Thread(target=lambda: said.append(run(
        imap_list, ["-s", "192.0.2.1:993", "--tls", "imaps"])))
    listing.start()
    listing.join(30)
    release.set()
    assert said == [(errors.USAGE, b"")]
    deadline = time.monotonic() + 30
    while not (made and made[0].closed) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert made and made[0].closed


def test_a_reader_of_records_loads_orjson_while_its_input_is_on_its_way():
    readable, writable = os.pipe()
    with os.fdopen(readable, "rb") as inp, os.fdopen(writable, "wb") as out:
        records.orjson.cache_clear()
        found = []
        reader = threading.Thread(target=lambda: found.extend(records.read_records(inp)))
        reader.start()
        deadline = time.monotonic() + 30
        while not records.orjson.cache_info().currsize and time.monotonic() < deadline:
            time.sleep(0.01)
        loaded = records.orjson.cache_info().currsize  # before a byte was written
        out.write(b'{"folder":"INBOX"}\n')
        out.close()
        reader.join()
    assert loaded == 1
    assert found == [(1, {"folder": "INBOX"})]


def test_a_reader_of_input_there_at_once_loads_orjson_only_at_its_first_record(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    records.orjson.cache_clear()
    with open(empty, "rb") as inp:
        assert list(records.read_records(inp)) == []
    assert records.orjson.cache_info().currsize == 0


SCRIPT = """
import atexit, sys
from imapstream import cli

atexit.register(lambda: sys.stderr.write("teardown\\n"))


def main(argv, stdin, stdout):
    sys.stdout.write("text, not flushed\\n")
    stdout.write(b"bytes, not flushed\\n")
    return int(argv[0])


cli.entry_point(main)
"""


def test_a_console_script_ends_without_teardown_its_output_flushed():
    for status in (0, 65):
        shown = subprocess.run([sys.executable, "-c", SCRIPT, str(status)],
                               capture_output=True)
        assert shown.returncode == status
        assert sorted(shown.stdout.splitlines()) == [b"bytes, not flushed",
                                                      b"text, not flushed"]
        assert shown.stderr == b""
