"""Round trips per account, not per folder (issue 13): the commands go out without
waiting where they can, counted from a protocol trace (tests/trace_proxy.py), never
timed.  Dovecot offers LIST-STATUS; tests/fake_imap.py does not."""

import pytest
from fake_imap import FakeIMAP
from plumbing import run
from trace_proxy import TraceProxy

from imapstream import errors
from imapstream.commands import imap_list
from imapstream.records import parse_record


def mail(n):
    return b"Subject: m%d\r\nMessage-ID: <m%d@pipe>\r\n\r\nbody %d\r\n" % (n, n, n)


def records(out):
    return [parse_record(line, 0) for line in out.splitlines()]


def through(proxy, monkeypatch):
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
    monkeypatch.setenv("IMAP_TLS", "none")  # a trace to read; loopback, so no warning


def dovecot_folders(client, numbers):
    for n in numbers:
        name = f"Archive/{n:03d}"
        client.create_folder(name)
        client.append(name, mail(n))


def no_change_run(tmp_path, monkeypatch, proxy):
    """imap-list --all --since (its own folder records): (round trips, commands)."""
    status, folders = run(imap_list, [])
    assert status == errors.OK
    (tmp_path / "since").write_bytes(folders)
    through(proxy, monkeypatch)
    status, out = run(imap_list, ["--all", "--since", str(tmp_path / "since")])
    assert status == errors.OK
    assert ({r["folder"] for r in records(out)}
            == {r["folder"] for r in records(folders) if not r["noselect"]})
    assert all(r["since"] == r["uidnext"] for r in records(out))  # checkpoints, no messages
    return proxy.round_trips(), proxy.commands()


def test_nothing_new_reads_every_status_with_one_list_status(dovecot, account, monkeypatch,
                                                             tmp_path):
    dovecot_folders(account, range(3))
    with TraceProxy(dovecot.port) as proxy:
        few, commands = no_change_run(tmp_path, monkeypatch, proxy)
    assert sum(b" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY))" in c for c in commands) == 1
    assert not any(b" STATUS " in c or b" EXAMINE " in c for c in commands)
    dovecot_folders(account, range(3, 33))  # 33 folders and INBOX now
    with TraceProxy(dovecot.port) as proxy:
        many, _commands = no_change_run(tmp_path, monkeypatch, proxy)
    assert many == few


def fake_folders(count):
    return {"INBOX": [mail(0)], **{f"Archive/{n:03d}": [mail(n)] for n in range(count)}}


@pytest.mark.parametrize("count", [3, 30])
def test_without_list_status_the_statuses_go_out_together(monkeypatch, tmp_path, count):
    with FakeIMAP(fake_folders(count)) as server, TraceProxy(server.port) as proxy:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        trips, commands = no_change_run(tmp_path, monkeypatch, proxy)
    assert sum(b" STATUS " in c for c in commands) == count + 1
    assert not any(b"RETURN" in c or b" EXAMINE " in c for c in commands)
    # The greeting, CAPABILITY, AUTHENTICATE CRAM-MD5 (two), CAPABILITY, LIST, all the
    # STATUS commands, LOGOUT: as many for 30 folders as for 3.
    assert trips == 8


def test_a_status_refused_fails_only_its_folder(monkeypatch, tmp_path, capsys):
    def status(session, tag, args):
        if b"Archive/001" in args:
            session.send(tag + b" NO [SERVERBUG] it broke\r\n")
            return None
        return session.do_status(tag, args)

    with FakeIMAP(fake_folders(3), handlers={"STATUS": status}) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        since = tmp_path / "since"
        since.write_bytes(b"".join(
            b'{"folder":"%s","uidvalidity":1130,"uidnext":2}\n' % name.encode()
            for name in fake_folders(3)))
        status, out = run(imap_list, ["--all", "--since", str(since)])
    assert status == errors.PARTIAL
    assert sorted(r["folder"] for r in records(out)) == ["Archive/000", "Archive/002", "INBOX"]
    assert capsys.readouterr().err == ("imap-list: Archive/001: status command error: NO "
                                       "[b'[SERVERBUG] it broke']\n")

