"""Round trips per account, not per folder (issue 13): the commands go out without
waiting where they can, counted from a protocol trace (tests/trace_proxy.py), never
timed.  Dovecot offers LIST-STATUS; tests/fake_imap.py does not."""

import pytest
from fake_imap import FakeIMAP
from plumbing import run
from trace_proxy import TraceProxy

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list
from imapstream.records import parse_record


def mail(n):
    return b"Subject: m%d\r\nMessage-ID: <m%d@pipe>\r\n\r\nbody %d\r\n" % (n, n, n)


def records(out):
    return [parse_record(line, 0) for line in out.splitlines()]


def names(commands):
    """The command names (UID FETCH as FETCH) of the lines a client sent."""
    return [c.split(b" ")[2 if b" UID " in c else 1] for c in commands if b" " in c]


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
    list_status = (b' LIST "" "*" RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT '
                   b'UIDVALIDITY HIGHESTMODSEQ))')
    assert sum(c.endswith(list_status) for c in commands) == 1
    # The capabilities come with the greeting and the login's OK: no CAPABILITY command.
    # ENABLE QRESYNC (the test Dovecot offers it) goes before any EXAMINE could
    assert names(commands) == [b"AUTHENTICATE", b"ENABLE", b"LIST", b"LOGOUT"]
    # The greeting, AUTHENTICATE CRAM-MD5 (two: the server speaks first), ENABLE with
    # LIST-STATUS; LOGOUT is not waited for.
    assert few == 4
    dovecot_folders(account, range(3, 33))  # 33 folders and INBOX now
    with TraceProxy(dovecot.port) as proxy:
        many, _commands = no_change_run(tmp_path, monkeypatch, proxy)
    assert many == few


def fake_folders(count):
    return {"INBOX": [mail(0)], **{f"Archive/{n:03d}": [mail(n + 1)] for n in range(count)}}


@pytest.mark.parametrize("count", [3, 30])
def test_without_list_status_the_statuses_go_out_together(monkeypatch, tmp_path, count):
    with FakeIMAP(fake_folders(count)) as server, TraceProxy(server.port) as proxy:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        trips, commands = no_change_run(tmp_path, monkeypatch, proxy)
    assert sum(b" STATUS " in c for c in commands) == count + 1
    assert names(commands) == [b"CAPABILITY", b"AUTHENTICATE", b"CAPABILITY", b"LIST",
                               *[b"STATUS"] * (count + 1), b"LOGOUT"]
    # The greeting (without capabilities), CAPABILITY, AUTHENTICATE CRAM-MD5 (two),
    # CAPABILITY (the login's OK does not say them), LIST, all the STATUS commands; LOGOUT
    # not waited for: as many for 30 folders as for 3.
    assert trips == 7


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
    assert capsys.readouterr().err == ("imap-list: Archive/001: status failed: [SERVERBUG] "
                                       "it broke\n")



def fetch_run(monkeypatch, proxy, listed):
    """imap-fetch of the records listed, through proxy: (round trips, commands, stream)."""
    through(proxy, monkeypatch)
    status, stream = run(imap_fetch, [], listed)
    assert status == errors.OK
    return proxy.round_trips(), proxy.commands(), stream


@pytest.mark.parametrize("budget", [imap_fetch.IN_FLIGHT, 0])
def test_body_fetches_stay_in_flight_across_folders(dovecot, account, monkeypatch, budget):
    dovecot_folders(account, range(3))
    status, few_listed = run(imap_list, ["--all"])
    dovecot_folders(account, range(3, 30))
    status, many_listed = run(imap_list, ["--all"])
    assert status == errors.OK
    monkeypatch.setattr(imap_fetch, "IN_FLIGHT", budget)
    with TraceProxy(dovecot.port) as proxy:
        few, _commands, _stream = fetch_run(monkeypatch, proxy, few_listed)
    with TraceProxy(dovecot.port) as proxy:
        many, commands, stream = fetch_run(monkeypatch, proxy, many_listed)
    assert sorted(c.split(b" ", 1)[1] for c in commands if b"EXAMINE" in c) == [
        b'EXAMINE "Archive/%03d"' % n for n in range(30)]
    assert sum(b" UID FETCH " in c for c in commands) == 30
    assert stream.count(b'"length":') == 30
    if budget:  # all the folders' EXAMINE and UID FETCH went out together
        assert many == few
    else:  # a batch's EXAMINE and FETCH go together, each batch once the one before is in
        assert many == few + 27


def list_run(monkeypatch, proxy, args):
    through(proxy, monkeypatch)
    status, out = run(imap_list, args)
    assert status == errors.OK
    return proxy.round_trips(), proxy.commands(), records(out)


def test_the_listings_of_all_folders_go_out_together(dovecot, account, monkeypatch):
    dovecot_folders(account, range(3))
    with TraceProxy(dovecot.port) as proxy:
        few, _commands, _listed = list_run(monkeypatch, proxy, ["--all"])
    dovecot_folders(account, range(3, 30))
    with TraceProxy(dovecot.port) as proxy:
        many, commands, listed = list_run(monkeypatch, proxy, ["--all"])
    assert sorted(r["message_id"] for r in listed) == sorted(f"<m{n}@pipe>" for n in range(30))
    assert sorted(names(commands)) == sorted([b"AUTHENTICATE", b"ENABLE", b"LIST",
                                              *[b"EXAMINE", b"FETCH"] * 30, b"EXAMINE",
                                              b"NOOP", b"LOGOUT"])
    assert many == few


def test_a_folder_not_as_its_status_said_is_listed_alone(monkeypatch, capsys):
    """STATUS counts one message less than EXAMINE (one arrived in between) in one
    folder, and the server refuses to open another: the first is listed again by
    itself, the second fails alone, and the folders after them are listed all the same."""
    def status(session, tag, args):
        if b"Archive/001" in args:
            session.send(b"* STATUS Archive/001 (MESSAGES 0 UIDVALIDITY 1130 UIDNEXT 1)\r\n"
                         + tag + b" OK done\r\n")
            return None
        return session.do_status(tag, args)

    def examine(session, tag, args):
        if b"Archive/003" in args:
            session.send(tag + b" NO [SERVERBUG] not today\r\n")
            return None
        return session.do_examine(tag, args)

    mailbox = fake_folders(6)
    with FakeIMAP(mailbox, handlers={"STATUS": status, "EXAMINE": examine}) as server, \
            TraceProxy(server.port) as proxy:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        through(proxy, monkeypatch)
        status, out = run(imap_list, ["--all"])
    assert status == errors.PARTIAL
    assert capsys.readouterr().err == ("imap-list: Archive/003: select failed: [SERVERBUG] "
                                       "not today\n")
    assert [(r["folder"], r["message_id"]) for r in records(out)] == [
        (name, f"<m{n}@pipe>") for n, name in enumerate(mailbox) if name != "Archive/003"]
    listed_alone = names(proxy.commands()).index(b"NOOP") + 1
    assert names(proxy.commands())[listed_alone:listed_alone + 2] == [b"EXAMINE", b"FETCH"]
