"""Limits: a provider's download limit or throttling (played by fake_imap with the words
Gmail and Microsoft 365 send), and --max-bytes against Dovecot.  A run stopped by a
limit keeps what it fetched, says in one line what is left and when to run again (exit
75), and a later run completes the backup without doubling a message."""

import re

import pytest
from plumbing import pipeline, run, serve
from test_quirks import held, message

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge

GMAIL = b"NO [OVERQUOTA] Account exceeded command or bandwidth limits."
THROTTLED = b"NO Request is throttled. Suggested Backoff Time: %d milliseconds"
MAILBOX = {"INBOX": [message(n) for n in range(1, 4)], "Later": [message(n) for n in range(4, 7)]}
SIZE = len(message(4))  # every message here has this size


def refusing(answers):
    """UID FETCH handlers that answer with answers (tagged, then its session's fate)
    in turn, one per UID FETCH of a Later message, and as usual once they are used up."""
    def answer(session, tag, args):
        if session.selected == "Later" and answers:
            text, ends = answers.pop(0)
            if text.startswith(b"* BYE"):  # the session ended, no tagged answer
                session.send(text + b"\r\n")
                return False
            session.send(tag + b" " + text + b"\r\n" + (b"* BYE Connection closed. 14\r\n"
                                                        if ends else b""))
            return not ends
        session.send(b"".join(r for _n, r in session.fetch(args, True)) + tag + b" OK done\r\n")
        return True
    return {"UID FETCH": answer}


def fetch_lines(err):
    return [line for line in err.splitlines() if line.startswith("imap-fetch:")]


def complete(directory):
    return {name: [uid for _f, uid, _flags, _data in items]
            for name, items in held(directory).items()} == {
        "INBOX.mbox": [1, 2, 3], "Later.mbox": [1, 2, 3]}


@pytest.mark.parametrize("answer", [GMAIL, b"* BYE " + GMAIL[3:]], ids=["NO", "BYE"])
def test_gmails_download_limit_keeps_what_was_fetched_and_says_what_is_left(
        monkeypatch, tmp_path, capsys, answer):
    with serve(monkeypatch, MAILBOX, handlers=refusing([(answer, False)])):
        assert pipeline(str(tmp_path)) == [errors.OK, errors.OK, errors.TEMPFAIL, errors.OK]
        assert fetch_lines(capsys.readouterr().err) == [
            f"imap-fetch: the server's limit is reached: [OVERQUOTA] Account exceeded command "
            f"or bandwidth limits.; 3 messages ({3 * SIZE} bytes) left to fetch; run again in "
            f"24 hours"]
        assert list(held(str(tmp_path))) == ["INBOX.mbox"]
        assert pipeline(str(tmp_path)) == [errors.OK] * 4  # the next day
    assert complete(str(tmp_path))


@pytest.mark.parametrize("ends", [False, True], ids=["NO", "NO-and-BYE"])
def test_a_short_backoff_is_waited_for(monkeypatch, tmp_path, capsys, ends):
    with serve(monkeypatch, MAILBOX, handlers=refusing([(THROTTLED % 50, ends)])) as server:
        assert pipeline(str(tmp_path)) == [errors.OK] * 4
    assert fetch_lines(capsys.readouterr().err) == [
        "imap-fetch: the server asks to wait 0.05 s (Request is throttled. Suggested Backoff "
        "Time: 50 milliseconds); waiting"]
    assert complete(str(tmp_path))
    assert sum(c.endswith(b"UID FETCH 1:3 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
               for c in server.commands) == 3  # INBOX, Later refused, Later again


def test_a_long_backoff_stops_the_run_until_the_time_it_names(monkeypatch, tmp_path, capsys):
    with serve(monkeypatch, MAILBOX, handlers=refusing([(THROTTLED % 299609, True)])):
        assert pipeline(str(tmp_path)) == [errors.OK, errors.OK, errors.TEMPFAIL, errors.OK]
    [line] = fetch_lines(capsys.readouterr().err)
    assert re.fullmatch(r"imap-fetch: the server's limit is reached: Request is throttled\. "
                        r"Suggested Backoff Time: 299609 milliseconds; 3 messages "
                        rf"\({3 * SIZE} bytes\) left to fetch; run again after "
                        r"\d\d:\d\d UTC", line), line
    assert list(held(str(tmp_path))) == ["INBOX.mbox"]


def test_max_wait_sets_how_long_a_wait_may_be(monkeypatch, tmp_path, capsys):
    with serve(monkeypatch, MAILBOX, handlers=refusing([(THROTTLED % 2000, False)])):
        _status, listed = run(imap_list, ["Later"])
        assert run(imap_fetch, ["--max-wait", "1.5"], listed)[0] == errors.TEMPFAIL
        assert "run again after" in capsys.readouterr().err
        assert run(imap_fetch, ["--max-wait", "-1"], listed)[0] == errors.USAGE


def test_a_server_that_keeps_throttling_stops_the_run(monkeypatch, tmp_path, capsys):
    answers = [(THROTTLED % 1, False)] * 4
    with serve(monkeypatch, MAILBOX, handlers=refusing(answers)):
        _status, listed = run(imap_list, ["Later"])
        assert run(imap_fetch, [], listed)[0] == errors.TEMPFAIL
    lines = fetch_lines(capsys.readouterr().err)
    assert len(lines) == 4 and lines[-1].startswith("imap-fetch: the server's limit is reached")
    assert not answers  # three waits, then the fourth refusal stops it


@pytest.mark.parametrize(("text", "size"), [("1", 1), ("10K", 10240), ("3k", 3072),
                                            ("2M", 2 << 20), ("3G", 3 << 30)])
def test_max_bytes_sizes(text, size):
    assert imap_fetch.byte_size(text) == size


@pytest.mark.parametrize("text", ["0", "-1", "1T", "ten", "1 K", "1.5K", ""])
def test_a_max_bytes_that_is_no_size_is_a_usage_error(text, capsys):
    assert run(imap_fetch, ["--max-bytes", text])[0] == errors.USAGE
    assert "imap-fetch: argument --max-bytes: wants a size above 0" in capsys.readouterr().err


def dovecot_pipeline(directory, *fetch_options):
    _s, listed = run(imap_list, ["--all", "--since", directory])
    _s, missing = run(mbox_ids, ["--missing", "-d", directory], listed)
    fetched, stream = run(imap_fetch, list(fetch_options), missing)
    merged, _out = run(mbox_merge, ["-d", directory], stream)
    return fetched, merged


def test_max_bytes_spreads_a_backup_over_runs(account, tmp_path, capsys):
    """Messages of 1,000 bytes each (CRLF, as RFC822.SIZE counts): --max-bytes 2500 takes
    two of them a run (the first of a run whatever its size: 700 takes one)."""
    bodies = {folder: [b"Subject: %s %d\r\n\r\n" % (folder.encode(), n) for n in range(count)]
              for folder, count in (("INBOX", 3), ("Archive", 2))}
    account.create_folder("Archive")
    for folder, messages in bodies.items():
        for data in messages:
            account.append(folder, data + b"x" * (1000 - len(data) - 2) + b"\r\n")
    directory = str(tmp_path)
    assert dovecot_pipeline(directory, "--max-bytes", "2500") == (errors.TEMPFAIL, errors.OK)
    assert fetch_lines(capsys.readouterr().err) == [
        "imap-fetch: stopped after 2000 bytes (--max-bytes 2500); 3 messages (3000 bytes) "
        "left to fetch; run again to go on"]
    assert dovecot_pipeline(directory, "--max-bytes", "700") == (errors.TEMPFAIL, errors.OK)
    capsys.readouterr()
    assert dovecot_pipeline(directory, "--max-bytes", "2K") == (errors.OK, errors.OK)
    assert dovecot_pipeline(directory) == (errors.OK, errors.OK)  # nothing more to fetch
    assert {name: len(items) for name, items in held(directory).items()} == {
        "Archive.mbox": 2, "INBOX.mbox": 3}


def test_imapbackup_max_bytes_then_a_run_that_completes(dovecot, imap_user, tmp_path):
    from conftest import command_env
    from test_imapbackup import imapbackup

    user, _password = imap_user
    with dovecot.client(user) as client:
        for n in range(4):
            client.append("INBOX", b"Subject: %d\r\n\r\n" % n + b"y" * 2000 + b"\r\n")
    env = command_env(dovecot, user)
    done = imapbackup(env, "-d", tmp_path, "--max-bytes", "3K")
    assert done.returncode == errors.TEMPFAIL, done.stderr
    assert "imap-fetch: stopped after 2016 bytes (--max-bytes 3072); 3 messages (6048 bytes) " \
           "left to fetch; run again to go on" in done.stderr
    assert imapbackup(env, "-d", tmp_path, "--max-bytes", "0").returncode == errors.USAGE
    done = imapbackup(env, "-d", tmp_path)
    assert done.returncode == errors.OK, done.stderr
    assert {name: len(items) for name, items in held(str(tmp_path)).items()} == {"INBOX.mbox": 4}


def test_what_is_left_counts_every_record_not_fetched(monkeypatch, capsys):
    """--max-bytes 1 fetches the first message alone; the stop comes as the first
    record of the next folder arrives, and that record is left too."""
    with serve(monkeypatch, MAILBOX):
        _status, listed = run(imap_list, ["INBOX", "Later"])
        status, out = run(imap_fetch, ["--max-bytes", "1"], listed)
    assert status == errors.TEMPFAIL and out.count(b'"length":') == 1
    assert fetch_lines(capsys.readouterr().err) == [
        f"imap-fetch: stopped after {SIZE} bytes (--max-bytes 1); 5 messages ({5 * SIZE} "
        f"bytes) left to fetch; run again to go on"]


def test_max_bytes_requests_no_message_past_the_budget(monkeypatch, capsys):
    """With body FETCHes in flight, the budget bounds what is asked, not only what is
    written: two messages' worth asks for UIDs 1:2 of INBOX and nothing more."""
    with serve(monkeypatch, MAILBOX) as server:
        _status, listed = run(imap_list, ["INBOX", "Later"])
        status, out = run(imap_fetch, ["--max-bytes", str(2 * SIZE)], listed)
    fetches = [c.split(b" ", 1)[1] for c in server.commands if b"UID FETCH" in c]
    assert fetches == [b"UID FETCH 1:2 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])"]
    assert status == errors.TEMPFAIL and out.count(b'"length":') == 2
    assert fetch_lines(capsys.readouterr().err) == [
        f"imap-fetch: stopped after {2 * SIZE} bytes (--max-bytes {2 * SIZE}); 4 messages "
        f"({4 * SIZE} bytes) left to fetch; run again to go on"]
