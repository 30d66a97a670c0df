"""Server quirks no Dovecot shows, played by fake_imap and run through the commands:
Exchange's unasked-for FLAGS, unsolicited responses in the middle of a FETCH, folder
names as literals, a NIL delimiter, \\Seen set despite BODY.PEEK, and folder names that
are not valid modified UTF-7.  UIDs start at 3 wherever a sequence number could be
taken for a UID."""

import os

import pytest
from fake_imap import literal
from plumbing import pipeline, run, serve

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids
from imapstream.mbox import archive
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.records import read_records

FLAGS = [[b"\\Seen"], [], [b"\\Flagged", b"$label1"], [b"\\Answered"], [b"\\Seen", b"Junk"]]


def message(number):
    return b"Subject: %d\r\nMessage-ID: <q%d@quirk>\r\n\r\nbody %d\r\n" % (number, number, number)


def records(out):
    return [record for _lineno, record in read_records(out.splitlines(True))]


def held(directory):
    """{file name: [(folder, uid, sorted flags, data)]} of a backup directory."""
    return {os.path.basename(path): [(r["folder"], r["uid"], sorted(r["flags"]), data)
                                     for _offset, r, data in scan(path)]
            for path in archive.mbox_files(directory)}


@pytest.fixture
def flagged(monkeypatch):
    """INBOX of five messages with their FLAGS, UIDs 3 to 7."""
    flags = {("INBOX", n): list(f) for n, f in enumerate(FLAGS, 1)}
    with serve(monkeypatch, {"INBOX": [message(n) for n in range(1, 6)]}, first_uid=3,
               flags=flags) as server:
        yield server


def expected_inbox():
    return [("INBOX", n + 2, sorted(f.decode() for f in FLAGS[n - 1]), to_lf(message(n)))
            for n in range(1, 6)]


def with_extras(extras):
    """A FETCH handler that answers as usual, with extras(number, by_uid) sent after the
    response for each message."""
    def handler(by_uid):
        def answer(session, tag, args):
            for number, response in session.fetch(args, by_uid):
                session.send(response + extras(number, by_uid))
            session.send(tag + b" OK done\r\n")
        return answer
    return {"FETCH": handler(False), "UID FETCH": handler(True)}


def test_exchange_sends_flags_unasked(flagged, tmp_path):
    """Exchange answers any FETCH with FLAGS, also in a response of their own without a
    UID; here message n's flags follow its response as "* n FETCH (FLAGS (...))", n
    being the UID of another message."""
    flagged.handlers.update(with_extras(lambda number, by_uid: b"* %d FETCH (FLAGS (%s))\r\n"
                                        % (number, b" ".join(FLAGS[number - 1]))))
    status, out = run(imap_list, ["INBOX"])
    assert status == errors.OK
    assert [(r["uid"], r["flags"]) for r in records(out)] == [
        (n + 2, [f.decode() for f in FLAGS[n - 1]]) for n in range(1, 6)]
    assert pipeline(str(tmp_path)) == [errors.OK] * 4
    assert held(str(tmp_path)) == {"INBOX.mbox": expected_inbox()}


def test_unsolicited_responses_in_the_middle_of_a_fetch(flagged, tmp_path):
    """EXISTS, RECENT, flag changes of other messages (with and without a UID) and, under
    UID FETCH where RFC 3501 allows it, an EXPUNGE of a message not asked for."""
    def noise(number, by_uid):
        lines = [b"* 9 EXISTS", b"* 1 RECENT", b"* 4 FETCH (FLAGS (\\Deleted))",
                 b"* 9 FETCH (UID 11 FLAGS (\\Seen))", b"* 3 FETCH (FLAGS ())"]
        if by_uid and number == 1:
            lines.append(b"* 2 EXPUNGE")
        return b"".join(line + b"\r\n" for line in lines)

    flagged.handlers.update(with_extras(noise))
    assert pipeline(str(tmp_path)) == [errors.OK] * 4
    assert held(str(tmp_path)) == {"INBOX.mbox": expected_inbox()}
    assert pipeline(str(tmp_path)) == [errors.OK] * 4
    assert held(str(tmp_path)) == {"INBOX.mbox": expected_inbox()}


def test_folder_names_sent_as_atoms_quoted_strings_and_literals(monkeypatch, tmp_path):
    names = ["INBOX", "Sent Items", 'say "hi" \\ back', "R&D", "Entwürfe", "line\r\nbreak"]

    def mixed(session, tag, args):
        forms = [b"INBOX", b'"Sent Items"', literal(b'say "hi" \\ back'), b'"R&-D"',
                 literal(b"Entw&APw-rfe"), literal(b"line\r\nbreak")]
        session.send(b"".join(b'* LIST (\\HasNoChildren) "/" ' + form + b"\r\n"
                              for form in forms) + tag + b" OK done\r\n")

    with serve(monkeypatch, {name: [message(n)] for n, name in enumerate(names)},
               handlers={"LIST": mixed}):
        status, out = run(imap_list, [])
        assert status == errors.OK
        assert [r["folder"] for r in records(out)] == names
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
    assert {name: [(f, data) for f, _uid, _flags, data in items]
            for name, items in held(str(tmp_path)).items()} == {
        "INBOX.mbox": [("INBOX", to_lf(message(0)))],
        "Sent Items.mbox": [("Sent Items", to_lf(message(1)))],
        'say "hi" %5C back.mbox': [('say "hi" \\ back', to_lf(message(2)))],
        "R&D.mbox": [("R&D", to_lf(message(3)))],
        "Entwürfe.mbox": [("Entwürfe", to_lf(message(4)))],
        "line%0D%0Abreak.mbox": [("line\r\nbreak", to_lf(message(5)))]}


def test_a_nil_delimiter(monkeypatch, tmp_path):
    """A flat name space: "delimiter": null, and no name is split into a hierarchy."""
    names = ["INBOX", "a/b.c", "x.y"]
    with serve(monkeypatch, {name: [message(n)] for n, name in enumerate(names)},
               delimiter=None):
        status, out = run(imap_list, [])
        assert status == errors.OK
        assert [(r["folder"], r["delimiter"]) for r in records(out)] == [
            (name, None) for name in names]
        status, out = run(imap_list, ["--all"])
        assert {r["delimiter"] for r in records(out)} == {None}
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
        assert sorted(held(str(tmp_path))) == ["INBOX.mbox", "a%2Fb%2Ec.mbox", "x%2Ey.mbox"]
        before = {p: p.read_bytes() for p in tmp_path.iterdir()}
        _status, listed = run(imap_list, ["--all"])
        assert run(mbox_ids, ["--missing", "-d", str(tmp_path)], listed) == (errors.OK, b"")
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
        assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before
    status, out = run(mbox_ids, ["-d", str(tmp_path)])
    assert status == errors.OK and {r["delimiter"] for r in records(out)} == {None}


def test_a_server_that_sets_seen_despite_peek_is_warned_about_once_per_folder(
        monkeypatch, tmp_path, capsys):
    mailbox = {"INBOX": [message(n) for n in range(1, 4)], "Read": [message(4), message(5)],
               "Other": [message(6), message(7)]}
    flags = {("Read", 1): [b"\\Seen"], ("Read", 2): [b"\\Seen"], ("Other", 2): [b"\\Seen"]}
    with serve(monkeypatch, mailbox, flags=flags, marks_seen=True):
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("imap-fetch:")]
    assert warnings == [
        "imap-fetch: INBOX: the server marked messages \\Seen despite BODY.PEEK",
        "imap-fetch: Other: the server marked messages \\Seen despite BODY.PEEK"]
    assert {folder: [flags for _f, _uid, flags, _data in items]
            for folder, items in held(str(tmp_path)).items()} == {
        "INBOX.mbox": [["\\Seen"]] * 3, "Read.mbox": [["\\Seen"]] * 2,
        "Other.mbox": [["\\Seen"]] * 2}


def test_a_record_without_flags_gives_no_seen_warning(monkeypatch, capsys):
    with serve(monkeypatch, {"INBOX": [message(1)]}, marks_seen=True):
        status, out = run(imap_fetch, [], b'{"folder":"INBOX","uid":1}\n')
    assert status == errors.OK and out.count(b"\\\\Seen") == 1
    assert capsys.readouterr().err == ""


INVALID = [b"&2AA-", b"R&D", b"bad&-\xff"]  # a lone surrogate, no closing '-', 8-bit


@pytest.fixture
def invalid_names(monkeypatch):
    """Folders whose names the server sends as raw bytes that are not modified UTF-7."""
    mailbox = {"INBOX": [message(1)], **{name: [message(2)] for name in INVALID},
               "ok": [message(3)]}
    with serve(monkeypatch, mailbox) as server:
        yield server


@pytest.mark.parametrize("argv", [[], ["--all"]], ids=["folders", "all"])
def test_a_folder_name_that_is_not_modified_utf7_is_skipped(invalid_names, capsys, argv):
    status, out = run(imap_list, argv)
    assert status == errors.PARTIAL
    assert {r["folder"] for r in records(out)} == {"INBOX", "ok"}
    assert capsys.readouterr().err.splitlines() == [
        f"imap-list: {shown}: the server's name for this folder is not valid modified "
        f"UTF-7; skipped" for shown in ("&2AA-", "R&D", "bad&-\\xff")]


def test_invalid_names_leave_the_rest_of_the_backup_whole(invalid_names, tmp_path, capsys):
    assert pipeline(str(tmp_path)) == [errors.PARTIAL, errors.OK, errors.OK, errors.OK]
    assert sorted(held(str(tmp_path))) == ["INBOX.mbox", "ok.mbox"]
    capsys.readouterr()
    assert run(imap_list, ["INBOX"])[0] == errors.OK
    assert run(imap_list, ["--all", "--exclude", "&|bad"])[0] == errors.OK
    assert capsys.readouterr().err == ""


def test_a_folder_argument_that_is_not_utf8_is_skipped(invalid_names, capsys):
    """As the shell passes the bytes of imap-list $'\\xff' INBOX."""
    status, out = run(imap_list, ["\udcff", "INBOX"])
    assert status == errors.PARTIAL and [r["folder"] for r in records(out)] == ["INBOX"]
    assert capsys.readouterr().err == ("imap-list: \\xff: not a folder name: it is not valid "
                                       "UTF-8; skipped\n")
