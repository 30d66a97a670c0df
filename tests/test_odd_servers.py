"""Servers that misbehave in ways no Dovecot does, played by fake_imap: a UIDNEXT that
lags behind the messages, INTERNALDATEs no calendar has, keywords no atom can be.  Each
case runs the whole pipeline and checks every message is held, byte for byte."""

import mailbox
import os
import re

import orjson
import pytest
from fake_imap import literal
from plumbing import pipeline, run, serve

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox import archive
from imapstream.mbox.mboxrd import format_message
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.records import read_records


def message(number):
    return b"Subject: %d\r\nMessage-ID: <o%d@odd>\r\n\r\nbody %d\r\n" % (number, number, number)


def records(out):
    return [record for _lineno, record in read_records(out.splitlines(True))]


def held(directory):
    """{file name: [(uid, data)]} of a backup directory."""
    return {os.path.basename(path): [(r["uid"], data) for _offset, r, data in scan(path)]
            for path in archive.mbox_files(directory)}


def test_a_lagging_uidnext_loses_no_new_message(monkeypatch, tmp_path):
    """Backed up at 2 messages; then 6 more arrive and the server says UIDNEXT 7 while
    its last UID is 8: the listing from the checkpoint (uidnext 3) must reach UIDs 3 to
    8, not start 8 - (7 - 3) messages before the end (UIDs 5 to 8)."""
    inbox = [message(n) for n in range(1, 3)]
    backup = str(tmp_path / "backup")
    with serve(monkeypatch, {"INBOX": inbox}) as server:
        assert pipeline(backup, "--since", backup) == [errors.OK] * 4
        inbox += [message(n) for n in range(3, 9)]
        server.uidnext["INBOX"] = 7
        status, out = run(imap_list, ["INBOX", "--since", backup])
        assert status == errors.OK
        assert [r.get("uid") for r in records(out)] == [3, 4, 5, 6, 7, 8, None]
        assert pipeline(backup, "--since", backup) == [errors.OK] * 4
    assert held(backup) == {"INBOX.mbox": [(n, to_lf(message(n))) for n in range(1, 9)]}


@pytest.mark.parametrize("chunk", [2000, 1], ids=["in-flight", "alone"])
@pytest.mark.parametrize("uidnext", [6, 7, 9])
def test_an_exact_or_lagging_uidnext_lists_the_same(monkeypatch, tmp_path, uidnext, chunk):
    """Whether UIDNEXT is right (9) or lags (6, 7), --since a checkpoint at 5 lists UIDs
    5 to 8, and the checkpoint says the server's UIDNEXT: with UID FETCH 5:* sent ahead,
    or (more new messages by STATUS than a chunk) listed alone, by sequence number."""
    monkeypatch.setattr("imapstream.imap.store.CHUNK", chunk)
    since = tmp_path / "since.ndjson"
    since.write_text('{"folder": "INBOX", "uidvalidity": 1130, "uidnext": 5}\n')
    with serve(monkeypatch, {"INBOX": [message(n) for n in range(1, 9)]},
               uidnext={"INBOX": uidnext}):
        status, out = run(imap_list, ["INBOX", "--since", str(since)])
    assert status == errors.OK
    assert [(r.get("uid"), r.get("uidnext")) for r in records(out)] == [
        (5, None), (6, None), (7, None), (8, None), (None, uidnext)]


BAD_DATES = {1: b'"29-Feb-2021 12:00:00 +0000"', 2: b'"31-Dec-9999 23:59:59 -2359"',
             4: b'"01-Jan-0001 00:00:00 +2359"', 5: b'"01-Jan-0001 00:00:00 -0100"'}


@pytest.mark.parametrize("by_imapclient", [False, True], ids=["fast", "imapclient"])
def test_an_internaldate_that_is_no_date_costs_only_that_date(monkeypatch, tmp_path, capsys,
                                                              by_imapclient):
    """29 February 2021 and dates with no UTC time in years 1 to 9999: each message is
    kept, its record's internaldate is null (its From line the time of writing), with a
    warning from imap-list and imap-fetch; a rerun adds nothing.  Year 1 stays year 1
    (imapclient reads it as 2001).  A quoted keyword sends the responses to imapclient's
    parser."""
    inbox = [message(n) for n in range(1, 6)]
    flags = {("INBOX", n): [b'"$a"'] for n in range(1, 6)} if by_imapclient else {}
    with serve(monkeypatch, {"INBOX": inbox}, flags=flags,
               dates={("INBOX", n): date for n, date in BAD_DATES.items()}):
        status, out = run(imap_list, ["INBOX"])
        assert status == errors.OK
        assert [r["internaldate"] for r in records(out)] == [
            None, None, "2005-07-01T12:00:00+00:00", None, "0001-01-01T00:00:00-01:00"]
        assert capsys.readouterr().err.splitlines() == [
            f"imap-list: INBOX: UID {n}: left out the INTERNALDATE '{BAD_DATES[n][1:-1].decode()}'"
            f", which is not a date in years 1 to 9999 (UTC)" for n in (1, 2, 4)]
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
        assert sum("left out the INTERNALDATE" in line
                   for line in capsys.readouterr().err.splitlines()) == 6
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
    path = str(tmp_path / "INBOX.mbox")
    assert [(r["uid"], r.get("internaldate"), data) for _o, r, data in scan(path)] == [
        (1, None, to_lf(inbox[0])), (2, None, to_lf(inbox[1])),
        (3, "2005-07-01T12:00:00+00:00", to_lf(inbox[2])), (4, None, to_lf(inbox[3])),
        (5, "0001-01-01T00:00:00-01:00", to_lf(inbox[4]))]
    with open(path, "rb") as f:
        assert [line for line in f if line.startswith(b"From ")][2::2] == [
            b"From MAILER-DAEMON Fri Jul  1 12:00:00 2005\n",
            b"From MAILER-DAEMON Mon Jan  1 01:00:00 0001\n"]


def test_keywords_no_header_can_hold_are_left_out(monkeypatch, tmp_path, capsys):
    """Keywords sent as literals holding CR LF and "From ", NUL, a space, 8-bit bytes,
    and an all-digit atom: only atoms (RFC 3501) are kept, each other one with a
    warning, and the file stays an mbox that Python's mailbox reads whole."""
    bad = [literal(b"bad\r\nFrom x"), literal(b"nul\x00"), b'"two words"', literal(b"\xe4")]
    flags = {("INBOX", 1): [b"\\Seen", b"$ok", *bad, b"123"]}
    with serve(monkeypatch, {"INBOX": [message(1), message(2)]}, flags=flags):
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
        err = capsys.readouterr().err
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
    assert sorted(line for line in err.splitlines() if "APPEND" not in line) == sorted(
        f"imap-{command}: INBOX: UID 1: left out the flag {flag!r}, which is not an atom "
        f"(RFC 3501)" for command in ("fetch", "list")
        for flag in ("bad\r\nFrom x", "nul\x00", "two words", "\ufffd"))
    path = tmp_path / "INBOX.mbox"
    assert [(r["flags"], data) for _o, r, data in scan(str(path))] == [
        (["\\Seen", "$ok", "123"], to_lf(message(1))), ([], to_lf(message(2)))]
    assert b"X-Keywords: $ok 123" + b" " * 32 + b"\nSubject: 1\n" in path.read_bytes()
    assert [m.get_payload() for m in mailbox.mbox(str(path))] == ["body 1\n", "body 2\n"]


def test_mbox_merge_writes_no_header_a_record_could_break(tmp_path, capsys):
    """A stream edited by hand: a keyword holding LF and "From ", one holding a space,
    and an INTERNALDATE with no UTC time.  mbox-merge refuses the record (exit 65,
    records.check_fields); should one get past, the writer puts the time of writing in
    the From line, keeps the date percent-encoded in X-Imapstream, and only the atom
    in X-Keywords."""
    data = b"Subject: x\r\n\r\nb\r\n"
    record = {"folder": "INBOX", "uidvalidity": 7, "uid": 1, "size": 17,
              "flags": ["\\Seen", "ok", "a\nFrom b", "two words"],
              "internaldate": "9999-12-31T23:59:59-23:59", "length": len(data)}
    stream = orjson.dumps(record) + b"\n" + data + b"\n"
    path = tmp_path / "out.mbox"
    assert run(mbox_merge, [str(path)], stream)[0] == errors.DATAERR
    assert capsys.readouterr().err.startswith('mbox-merge: line 1: "flags" must be ')
    assert not path.exists() or path.read_bytes() == b""
    path.write_bytes(format_message(to_lf(data), record))
    text = path.read_bytes()
    assert text.startswith(b"From MAILER-DAEMON ")
    assert text[text.index(b"\n"):] == (
        b"\nX-Imapstream: folder=INBOX; uidvalidity=7; uid=1; size=17; "
        b"internaldate=9999-12-31T23:59:59-23:59; octets=14\n"
        b"Status: RO\nX-Keywords: ok" + b" " * 32 + b"\nSubject: x\n\nb\n\n")
    assert [r["flags"] for _o, r, _data in scan(str(path))] == [["\\Seen", "ok"]]


def test_a_size_that_is_no_number_costs_only_that_size(monkeypatch, tmp_path, capsys):
    """RFC822.SIZE as a quoted string and as an atom of letters: the record's size is
    null, with a warning; the message is kept whole."""
    def sizes(by_uid):
        def answer(session, tag, args):
            for number, response in session.fetch(args, by_uid):
                session.send(re.sub(rb"RFC822\.SIZE \d+", [b'RFC822.SIZE "17"',
                                                          b"RFC822.SIZE big"][number - 1],
                                    response))
            session.send(tag + b" OK done\r\n")
        return answer

    inbox = [message(1), message(2)]
    with serve(monkeypatch, {"INBOX": inbox},
               handlers={"FETCH": sizes(False), "UID FETCH": sizes(True)}):
        status, out = run(imap_list, ["INBOX"])
        assert (status, [r["size"] for r in records(out)]) == (errors.OK, [None, None])
        assert capsys.readouterr().err.splitlines() == [
            "imap-list: INBOX: UID 1: left out the RFC822.SIZE '17', which is not a number",
            "imap-list: INBOX: UID 2: left out the RFC822.SIZE 'big', which is not a number"]
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
    assert held(str(tmp_path)) == {"INBOX.mbox": [(1, to_lf(inbox[0])), (2, to_lf(inbox[1]))]}


def trickle(session, tag, args):
    """UID FETCH answered one byte every 0.2 seconds, each within the read timeout."""
    data = b"".join(r for _n, r in session.fetch(args, True)) + tag + b" OK done\r\n"
    for byte in data:
        session.send(bytes([byte]))
        if session.server.closed.wait(0.2):
            return False
    return None


def test_a_trickling_server_is_stopped_at_the_deadline(monkeypatch, tmp_path, capsys):
    """A read timeout of 1 s, a byte every 0.2 s for the 3 messages (about 40 s), and
    --deadline 2: imap-fetch stops with one line and exit 75, without reconnecting;
    mbox-merge stores nothing; the next run, from a server that answers, stores all."""
    inbox = [message(n) for n in range(1, 4)]
    backup = str(tmp_path)
    with serve(monkeypatch, {"INBOX": inbox}, handlers={"UID FETCH": trickle}) as server:
        _, listed = run(imap_list, ["INBOX"])
        _, missing = run(mbox_ids, ["--missing", "-d", backup], listed)
        capsys.readouterr()
        status, stream = run(imap_fetch, ["-t", "1", "--deadline", "2"], missing)
        assert (status, stream) == (errors.TEMPFAIL, b"")
        assert capsys.readouterr().err == (
            "imap-fetch: stopped at the deadline of 2 seconds (--deadline); what was done is "
            "kept, run again to go on\n")
        assert sum(b" EXAMINE " in c for c in server.commands) == 2  # no reconnect
        assert run(mbox_merge, ["-d", backup], stream)[0] == errors.OK
        assert held(backup) == {}
        del server.handlers["UID FETCH"]
        assert pipeline(backup) == [errors.OK] * 4
    assert held(backup) == {"INBOX.mbox": [(n, to_lf(message(n))) for n in range(1, 4)]}


def test_a_deadline_below_zero_is_a_usage_error(capsys):
    assert run(imap_list, ["--deadline", "-1", "-s", "localhost:1", "-u", "x"])[0] == \
        errors.USAGE
    assert capsys.readouterr().err == ("imap-list: --deadline wants seconds, 0 or more, "
                                       "not -1\n")


def test_a_delimiter_no_record_can_carry_skips_only_its_folder(monkeypatch, tmp_path, capsys):
    """LIST gives INBOX the delimiter 0xFF and LF (as a literal): each is reported and
    skipped (exit 1); the folder with "/" is backed up."""
    def folders(session, tag, args):
        session.send(b'* LIST () "\xff" INBOX\r\n* LIST () ' + literal(b"\n") + b' Odd\r\n'
                     b'* LIST () "/" Good\r\n' + tag + b" OK done\r\n")

    good = [message(1)]
    with serve(monkeypatch, {"INBOX": [message(2)], "Odd": [message(3)], "Good": good},
               handlers={"LIST": folders}):
        assert pipeline(str(tmp_path)) == [errors.PARTIAL, 0, 0, 0]
    assert capsys.readouterr().err.splitlines()[:2] == [
        "imap-list: INBOX: the server's hierarchy delimiter for this folder (\\xff) is not "
        "one 7-bit character; skipped",
        "imap-list: Odd: the server's hierarchy delimiter for this folder (\\n) is not "
        "one 7-bit character; skipped"]
    assert held(str(tmp_path)) == {"Good.mbox": [(1, to_lf(message(1)))]}
