"""A hostile or broken server, played by fake_imap: folder names that try to leave the
backup directory or to collide, a 10 GB literal, malformed responses, stalls.  Every
name travels faithfully in the records and lands in a safe, distinct, reversible file
inside the backup directory; every misbehaviour ends in one clear line within the
timeout, in bounded memory."""

import os
import resource
import subprocess
import sys
import time

import pytest
from fake_imap import FakeIMAP
from plumbing import run

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.imap import transport
from imapstream.mbox import archive, folders
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.records import read_records

HOSTILE = ["INBOX", "../../x", "/etc/passwd", "a/../../b", ".", "..", "", "dir/", "a//b",
           "a\x00b", "bell\x07\x1b[31mred\r\nnext line", "\x85\u2028\u202egnp.exe", "x" * 1000,
           "x" * 999 + "y", "Case", "case", "CASE", "a.b", "a/b", "a%2Eb", "%_", "~root",
           "-rf", ".hidden", "Entwürfe", "Personal/2005/Q3"]
RECORD = b'{"folder":"INBOX","delimiter":"/","uidvalidity":1130,"uid":1,"size":3}\n'


def message(number):
    return b"Subject: folder %d\r\nMessage-ID: <f%d@hostile>\r\n\r\nbody %d\r\n" % (
        number, number, number)


@pytest.fixture
def hostile(monkeypatch):
    with FakeIMAP({name: [message(n)] for n, name in enumerate(HOSTILE)}) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


def pipeline(directory):
    statuses, data = [], b""
    for module, argv in ((imap_list, ["--all"]), (imap_fetch, []),
                         (mbox_merge, ["-d", str(directory)])):
        status, data = run(module, argv, data)
        statuses.append(status)
    return statuses


def test_records_carry_hostile_names_faithfully(hostile):
    status, out = run(imap_list, [])
    assert status == errors.OK
    assert [record["folder"] for _, record in read_records(out.splitlines(True))] == HOSTILE


def test_hostile_names_become_safe_distinct_reversible_files_inside_the_backup(hostile,
                                                                              tmp_path):
    backup = tmp_path / "deep" / "backup"
    cwd_before = sorted(os.listdir())
    assert pipeline(backup) == [errors.OK] * 3
    assert sorted(os.listdir()) == cwd_before
    assert set(tmp_path.rglob("*")) == {tmp_path / "deep", backup} | set(backup.iterdir())
    assert all(p.is_file() and not p.is_symlink() for p in backup.iterdir())
    names = [os.path.basename(p) for p in archive.mbox_files(str(backup))]
    assert len(names) == len(HOSTILE)
    held = {}
    for name in names:
        path = backup / name
        assert not name.startswith(".") and len(name.encode()) <= 255
        assert name == os.path.basename(os.path.normpath(path))
        [(_offset, record, data)] = list(scan(str(path)))
        held[record["folder"]] = data
        if "%~" not in name:
            assert folders.folder_name(name, "/") == record["folder"]
    assert held == {name: to_lf(message(n)) for n, name in enumerate(HOSTILE)}
    status, listed = run(mbox_ids, ["-d", str(backup)])
    assert status == errors.OK and listed.count(b"\n") == len(HOSTILE)
    before = {name: (backup / name).read_bytes() for name in names}
    assert pipeline(backup) == [errors.OK] * 3
    assert {name: (backup / name).read_bytes() for name in names} == before
    assert len(archive.mbox_files(str(backup))) == len(HOSTILE)


def test_dot_versus_delimiter_under_a_dot_delimiter(monkeypatch, tmp_path):
    with FakeIMAP({"a.b": [message(1)], "a/b": [message(2)], "a": [message(3)]},
                  delimiter=".") as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        assert pipeline(tmp_path) == [errors.OK] * 3
    assert [os.path.basename(p) for p in archive.mbox_files(str(tmp_path))] == [
        "a%2Fb.mbox", "a.b.mbox", "a.mbox"]
    assert folders.folder_name("a%2Fb.mbox", ".") == "a/b"


def test_a_file_system_that_ignores_case_gives_each_folder_its_own_file(hostile, tmp_path,
                                                                        monkeypatch):
    """As on macOS: the file system finds Case.mbox when asked for case.mbox."""
    lexists = os.path.lexists

    def ignoring_case(path):
        directory, name = os.path.split(path)
        return lexists(path) or (os.path.isdir(directory) and name.lower() in
                                 {n.lower() for n in os.listdir(directory)})

    monkeypatch.setattr(archive.os.path, "lexists", ignoring_case)
    hostile.mailbox = {name: [message(n)] for n, name in enumerate(("Case", "case", "CASE"))}
    assert pipeline(tmp_path) == [errors.OK] * 3
    names = [os.path.basename(p) for p in archive.mbox_files(str(tmp_path))]
    assert len({n.lower() for n in names}) == 3 and "Case.mbox" in names
    for name in names:
        [(_offset, record, _data)] = list(scan(str(tmp_path / name)))
        assert archive.folder_path(str(tmp_path), record["folder"], "/") == str(tmp_path / name)
    assert pipeline(tmp_path) == [errors.OK] * 3
    assert [os.path.basename(p) for p in archive.mbox_files(str(tmp_path))] == names


def test_control_characters_never_reach_the_terminal(hostile, capsys):
    assert run(imap_list, ["--all", "-v"])[0] == errors.OK
    err = capsys.readouterr().err
    assert err.count("\n") == len(HOSTILE) and not any(c in err for c in "\x1b\x07\x00\r\x85")
    assert "IMAP: Found 1 message in bell\\x07\\x1b[31mred\\x0d\\x0anext line\n" in err

    def refuse(session, tag, args):
        session.send(tag + b" NO [NONEXISTENT] \x1b]0;owned\x07 gone\r\n")

    hostile.handlers["EXAMINE"] = refuse
    assert run(imap_list, ["--all"])[0] == errors.PARTIAL
    err = capsys.readouterr().err
    assert err.count("\n") == len(HOSTILE) and not any(c in err for c in "\x1b\x07\x00\r\x85")
    assert "imap-list: bell\\x07\\x1b[31mred\\x0d\\x0anext line: select failed: [NONEXISTENT] " \
           "\\x1b]0;owned\\x07 gone\n" in err


# -- oversized, malformed, stalled -----------------------------------------------------


def test_a_10_gb_literal_is_refused_before_it_is_read(monkeypatch):
    def huge(session, tag, args):
        session.send(b"* 1 FETCH (UID 1 RFC822.SIZE 3 BODY[] {10737418240}\r\n" + b"x" * 1000)
        session.stall()

    with FakeIMAP({"INBOX": [b"abc"]}, handlers={"UID FETCH": huge}) as server:
        def one_gigabyte_of_memory():
            resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))

        began = time.monotonic()
        done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "imap-fetch")],
                              input=RECORD, env=dict(os.environ, **server.env()),
                              capture_output=True, preexec_fn=one_gigabyte_of_memory, timeout=60)
    assert done.returncode == errors.UNAVAILABLE
    assert done.stderr == (b"imap-fetch: refusing a response of more than 1073741824 bytes from "
                           b"the server (it announced a literal of 10737418240 bytes)\n")
    assert done.stdout == b"" and time.monotonic() - began < 10


def test_a_response_that_adds_up_past_the_limit_is_refused(monkeypatch, capsys):
    def many(session, tag, args):
        for number in range(1, 100):
            session.send(b"* %d FETCH (UID %d BODY[] {300000}\r\n%s)\r\n"
                         % (number, number, b"x" * 300000))
        session.send(tag + b" OK done\r\n")

    def endless_line(session, tag, args):
        session.send(b"* LIST () \"/\" " + b"x" * 2_000_000)
        session.stall()

    monkeypatch.setattr(transport, "RESPONSE_LIMIT", 1 << 20)
    with FakeIMAP({"INBOX": [b"abc"]}, handlers={"UID FETCH": many, "LIST": endless_line}) \
            as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        assert run(imap_fetch, [], RECORD) == (errors.UNAVAILABLE, b"")
        assert capsys.readouterr().err == (
            "imap-fetch: refusing a response of more than 1048576 bytes from the server (it "
            "announced a literal of 300000 bytes)\n")
        assert run(imap_list, [])[0] == errors.UNAVAILABLE
        assert capsys.readouterr().err == (
            f"imap-list: the server sent a line of more than {transport.LINE_LIMIT} bytes\n")


def reply(*lines):
    def handler(session, tag, args):
        session.send(b"".join(line + b"\r\n" for line in lines) + tag + b" OK done\r\n")
    return handler


@pytest.mark.parametrize(("command", "handler", "module", "words"), [
    ("LIST", reply(b"GARBAGE here"), imap_list, "malformed response from the server: "
                                                "unexpected response: b'GARBAGE here'"),
    ("LIST", reply(b'* LIST (\\HasNoChildren "/" INBOX'), imap_list,
     "malformed LIST response from the server: Tuple incomplete"),
    ("LIST", reply(b'* LIST (\\HasNoChildren) "/"'), imap_list,
     "malformed LIST response from the server: not enough values"),
    ("STATUS", reply(b"* STATUS INBOX (MESSAGES many)"), imap_list,
     "malformed STATUS response from the server"),
    ("EXAMINE", reply(b"* OK [UIDVALIDITY abc] x"), imap_fetch,
     "malformed EXAMINE response from the server: invalid literal for int()"),
    ("EXAMINE", reply(b"* 1 EXISTS"), imap_fetch,
     "the server's reply to EXAMINE 'INBOX' lacks UIDVALIDITY or EXISTS"),
    ("UID FETCH", reply(b"* 1 FETCH (UID one FLAGS)"), imap_fetch,
     "malformed FETCH response from the server: uneven number of response items"),
], ids=["garbage", "open-list", "short-list", "status", "uidvalidity", "no-uidvalidity",
        "fetch"])
def test_a_malformed_response_is_one_clear_line(monkeypatch, capsys, command, handler, module,
                                                words):
    with FakeIMAP({"INBOX": [b"abc"]}, handlers={command: handler}) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        began = time.monotonic()
        assert run(module, [], RECORD)[0] == errors.UNAVAILABLE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{module.PROG}: {words}"), err
    assert time.monotonic() - began < 5


def test_a_server_that_stalls_mid_response_hits_the_timeout(monkeypatch, capsys):
    def stall(session, tag, args):
        session.send(b"* 1 FETCH (UID 1 BODY[] {100}\r\nonly the start")
        session.stall()

    monkeypatch.setattr("imapstream.imap.session.BACKOFF_SECONDS", (0, 0, 0))
    with FakeIMAP({"INBOX": [b"abc"]}, handlers={"UID FETCH": stall, "LIST": stall}) as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        for module, stdin in ((imap_fetch, RECORD), (imap_list, b"")):
            began = time.monotonic()
            assert run(module, ["-t", "1"], stdin)[0] == errors.TEMPFAIL
            assert time.monotonic() - began < 10  # a try and its retries, 1 s each
            err = capsys.readouterr().err.splitlines()
            assert err[-1] == f"{module.PROG}: timed out waiting for the server"
