"""Gmail (X-GM-EXT-1), against the emulator tests/fake_gmail.py: the listing's gm_msgid,
gm_thrid and labels; each message stored once with its labels as Google Takeout writes
them, or a file per label with each message fetched once; labels that follow the
server; imapbackup end to end.  Restores: tests/test_gmail_restore.py."""

import collections
import csv
import io
import mailbox
import os
import re
import subprocess

import imapclient
import orjson
from conftest import REPO
from fake_gmail import ALL, Account, FakeGmail, sample_account
from hypothesis import given
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response
from plumbing import run

from imapstream.commands import imap_append, imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.imap.fetchparse import parse_simple
from imapstream.mbox import labeljournal, mboxrd
from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.stream import read_messages

SEED = int(os.environ.get("GMAIL_SEED", "14"))


def serve(monkeypatch, account):
    server = FakeGmail(account)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return server


def records(data):
    return [orjson.loads(line) for line in data.splitlines()]


def backup(directory):
    """imapbackup's pipeline: imap-list --once --all --since DIR | mbox-ids --missing |
    imap-fetch | mbox-merge; the four exit statuses and mbox-merge's output."""
    data, statuses = b"", []
    for module, argv in ((imap_list, ["--once", "--all", "--since", directory]),
                         (mbox_ids, ["--missing", "-d", directory]), (imap_fetch, []),
                         (mbox_merge, ["-d", directory])):
        status, data = run(module, argv, data)
        statuses.append(status)
    return statuses, data


def stored(directory):
    """[(record, message in LF form)] of every message the backup holds."""
    return [(record, data) for path in mbox_files(str(directory))
            for _offset, record, data in scan(path)]


def messages(account):
    """Counter of (bytes, labels, flags) of every message of an emulated account."""
    return collections.Counter((m.data, frozenset(m.labels), frozenset(m.flags))
                               for m in account.messages.values())


def test_the_emulator_keeps_gmail_rules(monkeypatch):
    account = Account()
    first = account.add(b"Subject: a\r\n\r\na\r\n", ["Work"])
    second = account.add(b"Subject: b\r\n\r\nb\r\n", ["\\Inbox", "Work"])
    account.add(b"Subject: c\r\n\r\nc\r\n", ["\\Trash", "Work"])
    with serve(monkeypatch, account) as server:
        assert account.uids["Work"] == {first: 1, second: 2}
        assert account.uids[ALL] == {first: 1, second: 2}  # not the one in Trash
        assert account.uids["INBOX"] == {second: 1}  # its own UID in each folder
        client = imapclient.IMAPClient(server.host, server.port, ssl=False)
        client.login("alice", "Fake-pass-13")
        assert (b"\\HasChildren", b"\\Noselect") == client.list_folders()[0][0]
        client.select_folder("INBOX")
        client.create_folder("Receipts")
        client.append("Receipts", b"Subject: d\r\n\r\nd\r\n")
        assert len(account.uids[ALL]) == 3 and len(account.uids["Receipts"]) == 1
        client.copy([1], "Receipts")  # a label more, no message more
        assert len(account.messages) == 4 and len(account.uids["Receipts"]) == 2
        fetched = client.fetch([1], ["X-GM-MSGID", "X-GM-LABELS"])[1]
        assert fetched[b"X-GM-MSGID"] == second
        assert set(fetched[b"X-GM-LABELS"]) == {b"Work", b"Receipts"}  # not INBOX's own
        client.logout()


LABELS = [b"\\Inbox", b"\\Important", b"Work", b"2024", b"007", b"0", b"NIL", b"nil",
          b'"NIL"', b'"Travel, 2024"', b'"a \\"b\\" \\\\c"', b"&AMQ-rger", b'"(x)"',
          b'"\\q"', b"a[b]", b'""', b"x%y"]


@given(st.lists(st.sampled_from(LABELS), max_size=4), st.integers(0, 2**64 - 1),
       st.booleans(), st.binary(max_size=30))
def test_the_fast_reader_reads_gmail_items_as_imapclient(labels, number, literal, body):
    head = (b"7 (UID 9 X-GM-MSGID %d X-GM-THRID %d X-GM-LABELS (%s) FLAGS (\\Seen)"
            % (number, number // 3, b" ".join(labels)))
    response = [(head + b" BODY[] {%d}" % len(body), body), b")"] if literal \
        else [head + b")"]
    fast = parse_simple(response)
    assert fast is None or fast == parse_fetch_response(response, False, False)
    simple = all(x not in label for label in labels for x in (b"[", b"%", b'\\q'))
    assert (fast is not None) == simple


def test_listing_records_carry_ids_and_labels(monkeypatch):
    account = Account()
    msgid = account.add(b"Subject: a\r\nMessage-ID: <a@x>\r\n\r\na\r\n",
                        ["\\Inbox", "\\Important", "Reisen/Ärger, 2024"], thrid=123)
    with serve(monkeypatch, account):
        status, out = run(imap_list, ["INBOX", ALL])
    inbox, everything = records(out)
    assert status == 0
    assert inbox["gm_msgid"] == everything["gm_msgid"] == str(msgid)
    assert inbox["gm_thrid"] == everything["gm_thrid"] == "123"
    assert inbox["uid"] == everything["uid"] == 1
    # INBOX's own label, left out by the server, is added back; modified UTF-7 decoded
    assert sorted(inbox["labels"]) == ["Reisen/Ärger, 2024", "\\Important", "\\Inbox"]
    assert sorted(everything["labels"]) == sorted(inbox["labels"])


def test_every_message_is_stored_once_with_its_labels(monkeypatch, tmp_path):
    account = sample_account(SEED)
    with serve(monkeypatch, account):
        statuses, _merged = backup(str(tmp_path))
        assert statuses == [0, 0, 0, 0]
        held = stored(tmp_path)
        assert sorted(os.path.basename(p) for p in mbox_files(str(tmp_path))) == [
            "[Gmail].All Mail.mbox", "[Gmail].Spam.mbox", "[Gmail].Trash.mbox"]
        copies = len(held) / len(account.messages)
        recovered = collections.Counter((data, frozenset(record["labels"]))
                                        for record, data in held)
        expected = collections.Counter((to_lf(m.data), frozenset(m.labels))
                                       for m in account.messages.values())
        print(f"stored copies per distinct message: {copies:.2f}x; labels recoverable: "
              f"{sum((recovered & expected).values())} of {len(account.messages)}")
        assert copies == 1.0 and recovered == expected
        assert {record["gm_msgid"] for record, _data in held} == {
            str(m) for m in account.messages}
        # as a Takeout reader sees them: Python's mailbox, the labels as one CSV record
        takeout = {"\\Inbox": "Inbox", "\\Sent": "Sent", "\\Draft": "Drafts",
                   "\\Important": "Important", "\\Starred": "Starred", "\\Spam": "Spam",
                   "\\Trash": "Trash"}
        seen = collections.Counter()
        for path in mbox_files(str(tmp_path)):
            for message in mailbox.mbox(path):
                value = dict(message.raw_items())["X-Gmail-Labels"]  # its 8-bit bytes kept
                value = value.encode("ascii", "surrogateescape").decode("utf-8")
                names = next(csv.reader([value]))
                seen[(message["Subject"], frozenset(names) - {"Archived", "Opened", "Unread"},
                      message["X-GM-THRID"])] += 1
        assert seen == collections.Counter(
            (re.search(rb"Subject: (.*)\r", m.data).group(1).decode(),
             frozenset(takeout.get(x, x) for x in m.labels), str(m.thrid))
            for m in account.messages.values())
        assert backup(str(tmp_path)) == ([0, 0, 0, 0], b"")  # a rerun adds nothing
        # a message moved to Trash is listed there under a new UID: held, not fetched
        moved = next(m for m in account.messages.values() if "\\Inbox" in m.labels)
        moved.labels.add("\\Trash")
        account.refresh()
        assert backup(str(tmp_path)) == ([0, 0, 0, 0], b"")
        assert len(stored(tmp_path)) == len(account.messages)


def test_a_file_per_label_fetching_each_message_once(monkeypatch, tmp_path):
    account = sample_account(SEED)
    directory = str(tmp_path)
    with serve(monkeypatch, account):
        data, stream = b"", []
        for module, argv in ((imap_list, ["--all", "--since", directory]),
                             (mbox_ids, ["--missing", "-d", directory, "--copies"]),
                             (imap_fetch, []), (mbox_merge, ["-d", directory])):
            status, data = run(module, argv, data)
            assert status == 0
            if module is imap_fetch:
                stream = list(read_messages(io.BytesIO(data)))
        bodies = sum(1 for _record, body in stream if body is not None)
        copies = sum(1 for record, body in stream if body is None and "copy_of" in record)
        print(f"a file per label: {bodies} bodies fetched, {copies} copies from the backup")
        assert bodies == len(account.messages)
        for folder in account.folders():
            path = os.path.join(directory, folder.replace("/", ".") + ".mbox")
            held = collections.Counter(d for _o, _r, d in scan(path)) \
                if os.path.exists(path) else collections.Counter()
            assert held == collections.Counter(to_lf(m.data) for _u, m in
                                               account.listing(folder)), folder
        data = b""
        for module, argv in ((imap_list, ["--all", "--since", directory]),
                             (mbox_ids, ["--missing", "-d", directory, "--copies"])):
            data = run(module, argv, data)[1]
        assert [r for r in records(data) if "uid" in r] == []  # a rerun: nothing to do
    target = Account()
    with serve(monkeypatch, target):
        assert run(imap_append, ["-d", directory])[0] == 0
    assert messages(target) == messages(account)  # each once, its labels right


def test_a_copy_of_a_message_no_file_holds_fails_its_folder(tmp_path, capsys):
    copy = {"folder": "Work", "delimiter": "/", "uidvalidity": 7, "uid": 3,
            "gm_msgid": "99", "labels": ["Work"], "copy_of": "99"}
    checkpoint = {"folder": "Work", "delimiter": "/", "uidvalidity": 7, "uidnext": 4,
                  "messages": 1, "since": None, "checkpoint": True}
    stream = orjson.dumps(copy) + b"\n" + orjson.dumps(checkpoint) + b"\n"
    assert run(mbox_merge, ["-d", str(tmp_path), "--json"], stream) == (
        1, b'{"folders":1,"failed":["Work"]}\n')
    assert capsys.readouterr().err == ("mbox-merge: Work: UID 3: no file holds its message "
                                       "(gm_msgid 99) to copy\n")
    assert run(mbox_ids, ["--folders", "-d", str(tmp_path)]) == (0, b"")  # no checkpoint


def test_stored_lines_as_takeout_writes_them():
    data = b"Subject: s\r\nX-Gmail-Labels: Forged\r\nX-GM-THRID: 1\r\n\r\nb\r\n"
    record = {"folder": ALL, "delimiter": "/", "uidvalidity": 7, "uid": 3, "size": 56,
              "internaldate": "2024-03-01T10:00:00+00:00", "flags": ["\\Seen"],
              "gm_msgid": "1600000000000000001", "gm_thrid": "1600000000000000002",
              "labels": ["\\Inbox", "\\Important", "Travel, 2024", "Ärger"]}
    text = mboxrd.format_message(to_lf(data), record)
    assert text == (
        b"From MAILER-DAEMON Fri Mar  1 10:00:00 2024\n"
        b"X-Imapstream: folder=[Gmail]/All%20Mail; delimiter=/; uidvalidity=7; uid=3; "
        b"size=56; internaldate=2024-03-01T10:00:00+00:00; gm_msgid=1600000000000000001; "
        b"octets=51\n"
        b"Status: RO\n"
        b"X-Keywords:" + b" " * 32 + b"\n"
        b"X-GM-THRID: 1600000000000000002\n"
        b'X-Gmail-Labels: Inbox,Important,"Travel, 2024",\xc3\x84rger,Opened\n'
        b"Subject: s\n>X-Gmail-Labels: Forged\n>X-GM-THRID: 1\n\nb\n\n")
    parsed, original = mboxrd.parse_message(text)
    assert original == to_lf(data)
    assert parsed["labels"] == record["labels"] and parsed["gm_thrid"] == record["gm_thrid"]
    archived = mboxrd.format_message(to_lf(data), dict(record, labels=[], flags=[]))
    assert b"X-Gmail-Labels: Archived,Unread\n" in archived
    assert b"\nX-Gmail-Labels" not in mboxrd.format_message(to_lf(data), {"flags": []})


def test_labels_follow_without_fetching_again(monkeypatch, tmp_path):
    source = sample_account(SEED)
    with serve(monkeypatch, source):
        backup(str(tmp_path))
        held = [m for m in source.messages.values() if m.labels - {"\\Spam", "\\Trash"}
                and not m.labels & {"\\Spam", "\\Trash"}]
        held[0].labels.add("Later")
        held[1].labels.discard(min(held[1].labels))
        held[2].labels.add("\\Trash")  # moved to Trash: held in All Mail's file
        source.label("Later")
        assert backup(str(tmp_path)) == ([0, 0, 0, 0], b"")  # no body fetched
        status, listed = run(imap_list, ["--once", "--all"])
        checked = records(run(mbox_ids, ["--check", "-d", str(tmp_path)], listed)[1])
        assert sum(r["missing"] for r in checked) == 0  # the one in Trash is held too
        assert run(mbox_merge, ["-d", str(tmp_path), "--labels"], listed) == (0, b"")
        journal = os.path.join(tmp_path, ".[Gmail].All Mail.mbox.labels")
        assert len(open(journal, "rb").read().splitlines()) == 3
        assert run(mbox_merge, ["-d", str(tmp_path), "--labels"], listed) == (0, b"")
        assert len(open(journal, "rb").read().splitlines()) == 3  # nothing new to note
        assert status == 0
    target = Account()
    with serve(monkeypatch, target):
        assert run(imap_append, ["-d", str(tmp_path)])[0] == 0
    assert messages(target) == messages(source)  # the labels as they are now


def test_a_label_journal_line_cut_short_counts_for_nothing(tmp_path):
    mbox = os.path.join(tmp_path, "All.mbox")
    with open(labeljournal.path_for(mbox), "wb") as f:
        f.write(b'{"gm_msgid":"1","labels":["a"]}\n{"gm_msgid":"2","labels":"x"}\n'
                b'{"gm_msgid":"1","labels":["b"]}\n{"gm_msgid":"1","labels":["c"')
    assert labeljournal.load(mbox) == {"1": ["b"]}


def test_imapbackup_on_gmail_and_check(monkeypatch, tmp_path):
    account = sample_account(SEED)
    with serve(monkeypatch, account) as server:
        env = dict(os.environ, **server.env())
        env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
        done = subprocess.run([str(REPO / "bin" / "imapbackup"), "-d", str(tmp_path)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(stored(tmp_path)) == len(account.messages)
        check = subprocess.run([str(REPO / "bin" / "imapbackup"), "-d", str(tmp_path),
                                "--check"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert check.returncode == 0, check.stderr
        assert "[Gmail]/All Mail" in check.stdout and "INBOX" not in check.stdout
        moved = next(m for m in account.messages.values() if "\\Inbox" in m.labels)
        moved.labels.discard("\\Inbox")
        account.refresh()
        again = subprocess.run([str(REPO / "bin" / "imapbackup"), "-d", str(tmp_path)],
                               env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert "LABELS: 1 message with other labels now" in again.stderr
        assert labeljournal.load(os.path.join(tmp_path, "[Gmail].All Mail.mbox")) == {
            str(moved.msgid): sorted(moved.labels)}
        per_label = tmp_path / "per-label"
        done = subprocess.run([str(REPO / "bin" / "imapbackup"), "-d", str(per_label),
                               "--label-folders"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(stored(per_label)) == sum(len(account.uids[f]) for f in account.folders())


def test_labels_must_be_strings_without_control_characters(monkeypatch):
    line = b'{"folder":"INBOX","uid":1,"labels":["a\\nb"]}\n'
    status, _out = run(imap_fetch, [], line)
    assert status == 65
    assert run(imap_fetch, [], b'{"folder":"INBOX","uid":1,"gm_msgid":12}\n')[0] == 65


def test_nothing_changes_for_dovecot(monkeypatch, tmp_path, dovecot, imap_user):
    client = dovecot.client(imap_user[0])
    client.create_folder("Work")
    for folder in ("INBOX", "Work"):
        client.append(folder, b"Subject: s\r\nX-Gmail-Labels: Inbox\r\n\r\nb\r\n")
    client.logout()
    for key, value in dovecot.env(imap_user[0]).items():
        monkeypatch.setenv(key, value)
    once, every = run(imap_list, ["--once", "--all"]), run(imap_list, ["--all"])
    assert once == every and b'"labels"' not in every[1] and b"gm_msgid" not in every[1]
    statuses, _merged = backup(str(tmp_path))
    assert statuses == [0, 0, 0, 0]
    for path in mbox_files(str(tmp_path)):
        text = open(path, "rb").read()
        assert b"\nX-GM-THRID" not in text and text.count(b"\n>X-Gmail-Labels: Inbox\n") == 1
        assert not os.path.exists(labeljournal.path_for(path))
