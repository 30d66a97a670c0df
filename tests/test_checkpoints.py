"""Folder checkpoints against a real Dovecot: imap-list --since lists only what is new,
mbox-merge records a checkpoint only where the backup holds every message below it, and
anything that breaks that chain makes the next run list the folder whole."""

import os

import orjson
from plumbing import AWKWARD, append_all, backup_messages, run, server_messages

from imapstream.commands import imap_append, imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.imap import pipeline
from imapstream.mbox import sidecar
from imapstream.mbox.reader import Holdings
from imapstream.records import Checkpoint, withdraw


def records(ndjson):
    return [orjson.loads(line) for line in ndjson.splitlines() if line.strip()]


def on_server(client):
    return {folder: held for folder, held in server_messages(client).items() if held}


def since_file(directory):
    """What mbox-ids --folders says of DIR (made if missing), in a file beside it."""
    os.makedirs(directory, exist_ok=True)
    status, since = run(mbox_ids, ["--folders", "-d", directory])
    assert status == 0
    known = directory + ".since"
    with open(known, "wb") as f:
        f.write(since)
    return known


def listed(directory):
    """imap-list --all --since what DIR's sidecars hold; (status, message records,
    checkpoints)."""
    status, out = run(imap_list, ["--all", "--since", since_file(directory)])
    every = records(out)
    return (status, [r for r in every if "uid" in r],
            [r for r in every if "checkpoint" in r])


def incremental(directory):
    """The one-pass pipeline with checkpoints; returns (statuses, listing, stream)."""
    os.makedirs(directory, exist_ok=True)
    s1, listing = run(imap_list, ["--all", "--since", directory])
    s2, missing = run(mbox_ids, ["--missing", "-d", directory], listing)
    s3, stream = run(imap_fetch, [], missing)
    s4, _ = run(mbox_merge, ["-d", directory], stream)
    return (s1, s2, s3, s4), listing, stream


def test_a_rerun_lists_nothing_and_new_mail_lists_only_the_new(account, tmp_path):
    backup_dir = str(tmp_path / "backup")
    append_all(account, "INBOX", AWKWARD)
    account.create_folder("Archive")
    append_all(account, "Archive", AWKWARD[:3])
    account.create_folder("Empty")
    statuses, listing, _ = incremental(backup_dir)
    assert statuses == (0, 0, 0, 0)
    assert backup_messages(backup_dir) == on_server(account)
    marks = records(run(mbox_ids, ["--folders", "-d", backup_dir])[1])
    assert {(m["folder"], m["uidnext"]) for m in marks} == {
        ("INBOX", len(AWKWARD) + 1), ("Archive", 4), ("Empty", 1)}  # in an empty file

    status, messages, checkpoints = listed(backup_dir)
    assert status == 0 and messages == []
    assert {c["folder"] for c in checkpoints} == {"INBOX", "Archive", "Empty"}
    assert all(c["checkpoint"] is True for c in checkpoints)
    assert [c["since"] == c["uidnext"] for c in checkpoints] == [True, True, True]

    append_all(account, "INBOX", [b"Subject: new\r\n\r\nnew\r\n"])
    status, messages, _ = listed(backup_dir)
    assert [(m["folder"], m["uid"]) for m in messages] == [("INBOX", len(AWKWARD) + 1)]
    statuses, _, stream = incremental(backup_dir)
    assert statuses == (0, 0, 0, 0) and stream.count(b'"length":') == 1
    assert backup_messages(backup_dir) == on_server(account)
    assert listed(backup_dir)[1] == []


def test_a_changed_uidvalidity_lists_the_folder_whole_and_adds_nothing(
        account, dovecot, tmp_path):
    backup_dir = str(tmp_path / "backup")
    append_all(account, "INBOX", AWKWARD)
    incremental(backup_dir)
    size = os.path.getsize(os.path.join(backup_dir, "INBOX.mbox"))
    dovecot.doveadm("mailbox", "update", "--uid-validity", "77", "-u",
                    os.environ["IMAP_USER"], "INBOX")
    _, messages, checkpoints = listed(backup_dir)
    assert len(messages) == len(AWKWARD) and checkpoints[0]["since"] is None
    statuses, _, _ = incremental(backup_dir)
    assert statuses == (0, 0, 0, 0)
    assert os.path.getsize(os.path.join(backup_dir, "INBOX.mbox")) == size
    marks = records(run(mbox_ids, ["--folders", "-d", backup_dir])[1])
    assert [(m["uidvalidity"], m["uidnext"]) for m in marks] == [(77, len(AWKWARD) + 1)]
    assert listed(backup_dir)[1] == []


def test_a_deleted_or_rewritten_mbox_is_listed_and_fetched_whole(account, tmp_path):
    backup_dir = str(tmp_path / "backup")
    append_all(account, "INBOX", AWKWARD)
    incremental(backup_dir)
    path = os.path.join(backup_dir, "INBOX.mbox")
    os.unlink(path)
    statuses, _, _ = incremental(backup_dir)
    assert statuses == (0, 0, 0, 0)
    assert backup_messages(backup_dir) == on_server(account)

    # Another program rewrites the file without the first message: the sidecar no
    # longer describes it, so its checkpoint is gone and the message comes back.
    with open(path, "rb") as f:
        text = f.read()
    second = text.index(b"\nFrom ", 1) + 1
    with open(path, "wb") as f:
        f.write(text[second:])
    assert sidecar.checkpoints(path) == {}
    _, messages, _ = listed(backup_dir)
    assert len(messages) == len(AWKWARD)
    incremental(backup_dir)
    assert backup_messages(backup_dir) == on_server(account)


def test_a_checkpoint_from_another_backup_is_not_recorded(account, tmp_path):
    """A listing from B's checkpoints merged into A, which lacks B's messages, must not
    tell A that it holds them."""
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    append_all(account, "INBOX", AWKWARD[:4])
    incremental(a)
    append_all(account, "INBOX", AWKWARD[4:8])
    incremental(b)
    append_all(account, "INBOX", AWKWARD[8:])
    _, listing = run(imap_list, ["--all", "--since", since_file(b)])
    _, missing = run(mbox_ids, ["--missing", "-d", a], listing)
    _, stream = run(imap_fetch, [], missing)
    assert run(mbox_merge, ["-d", a], stream)[0] == 0
    assert records(run(mbox_ids, ["--folders", "-d", a])[1])[0]["uidnext"] == 5
    incremental(a)  # lists from UID 5 on, so A gets the messages it missed
    assert backup_messages(a) == on_server(account)


def test_a_folder_with_a_message_not_fetched_keeps_its_old_checkpoint(account, tmp_path):
    backup_dir = str(tmp_path / "backup")
    append_all(account, "INBOX", AWKWARD[:2])
    incremental(backup_dir)
    append_all(account, "INBOX", AWKWARD[2:4])
    _, listing = run(imap_list, ["--all", "--since", since_file(backup_dir)])
    account.select_folder("INBOX")
    account.delete_messages([3])
    account.expunge()
    account.unselect_folder()
    status, stream = run(imap_fetch, [], listing)
    assert status == 1
    assert b'"checkpoint":false' in stream and b'"checkpoint":true' not in stream
    run(mbox_merge, ["-d", backup_dir], stream)
    marks = records(run(mbox_ids, ["--folders", "-d", backup_dir])[1])
    assert marks[0]["uidnext"] == 3


def test_imap_append_passes_over_checkpoints(account):
    append_all(account, "INBOX", AWKWARD[:2])
    _, listing = run(imap_list, ["--all", "--since", os.devnull])
    _, stream = run(imap_fetch, [], listing)
    assert stream.count(b'"checkpoint":true') == 1
    status, out = run(imap_append, ["--dry-run", "Restored"], stream)
    assert status == 0 and len(records(out)) == 2


def test_a_reconnect_during_a_listing_vouches_for_nothing(account, monkeypatch, tmp_path,
                                                          capsys):
    """Sequence numbers may shift across a reconnect, so the folder's checkpoint after
    it is false, and mbox-merge records none."""
    append_all(account, "INBOX", AWKWARD)
    monkeypatch.setattr("imapstream.imap.store.CHUNK", 4)
    monkeypatch.setattr("imapstream.imap.session.BACKOFF_SECONDS", (0, 0, 0))
    answer, calls = pipeline.Wire.answer, []

    def dropped_once(wire):
        calls.append(wire)
        if len(calls) == 4:  # after LIST-STATUS, EXAMINE and the first 4 messages
            raise ConnectionResetError("cut by the test")
        return answer(wire)

    monkeypatch.setattr(pipeline.Wire, "answer", dropped_once)
    status, listing = run(imap_list, ["--all", "--since", os.devnull])
    assert status == 0 and "reconnecting" in capsys.readouterr().err
    every = records(listing)
    assert [r["uid"] for r in every if "uid" in r] == list(range(1, len(AWKWARD) + 1))
    assert every[-1]["checkpoint"] is False
    backup_dir = str(tmp_path / "backup")
    _, stream = run(imap_fetch, [], listing)
    assert run(mbox_merge, ["-d", backup_dir], stream)[0] == 0
    assert run(mbox_ids, ["--folders", "-d", backup_dir])[1] == b""


def test_bad_since_and_checkpoint_records_are_errors(account, tmp_path, capsys, monkeypatch):
    since = tmp_path / "since.ndjson"
    since.write_bytes(b'{"folder": "INBOX", "uidvalidity": 1, "uidnext": 2}\nnot json\n')
    assert run(imap_list, ["--all", "--since", str(since)])[0] == 65
    assert capsys.readouterr().err.startswith(f"imap-list: {since}: line 2: not a JSON")
    with monkeypatch.context() as patch:  # read while connecting, said before that fails
        patch.setenv("IMAP_SERVER", "127.0.0.1:1")
        assert run(imap_list, ["--all", "--since", str(since)])[0] == 65
        assert capsys.readouterr().err.startswith(f"imap-list: {since}: line 2: not a JSON")
    bad = b'{"folder": "INBOX", "uidnext": 3, "checkpoint": true}\n'
    assert run(mbox_ids, ["--missing", "-d", str(tmp_path)], bad)[0] == 65
    assert run(imap_fetch, [], bad)[0] == 65
    assert run(mbox_merge, ["-d", str(tmp_path)], bad)[0] == 65
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all("line 1: folder checkpoint without positive integers"
                                   in line for line in lines)


def test_a_checkpoint_record_reads_and_writes_as_imapstream_7_shows_it():
    line = (b'{"folder":"INBOX","delimiter":"/","uidvalidity":1130,"uidnext":2441,'
            b'"messages":2440,"since":2400,"checkpoint":true}')
    checkpoint = Checkpoint.of(orjson.loads(line), 1)
    assert checkpoint == Checkpoint("INBOX", "/", 1130, 2441, 2440, 2400, vouches=True)
    assert orjson.dumps(checkpoint.record()) == line
    assert checkpoint.says_more()
    assert not checkpoint._replace(since=2441).says_more()  # a folder with nothing new
    assert not checkpoint._replace(vouches=False).says_more()
    # With CONDSTORE: highestmodseq after since; nothing new but changed flags says more.
    changed = line.replace(b'"since":2400,', b'"since":2441,"highestmodseq":77,')
    checkpoint = Checkpoint.of(orjson.loads(changed), 1)
    assert checkpoint.highestmodseq == 77 and orjson.dumps(checkpoint.record()) == changed
    assert checkpoint.says_more()
    record = dict(orjson.loads(line), unknown="kept")
    assert withdraw(record) == dict(orjson.loads(line), unknown="kept", checkpoint=False,
                                    failed=True)


def test_a_whole_listing_that_meets_the_same_mark_changes_nothing(tmp_path):
    holdings = Holdings(str(tmp_path / "INBOX.mbox"))
    first = Checkpoint("INBOX", "/", 5, 10, 9, None)
    holdings.checkpoint(first)
    holdings.checkpoint(first._replace(messages=8))  # once compared None with a UID
    assert holdings.marks == {"INBOX": first}
    holdings.checkpoint(first._replace(uidnext=7, since=None))  # restored: lower, whole
    assert holdings.marks["INBOX"].uidnext == 7
    holdings.checkpoint(first._replace(uidnext=12, since=8))  # from 8 on: not covered
    assert holdings.marks["INBOX"].uidnext == 7


def mark(uidnext, folder=b"INBOX", since=b"null"):
    return (b'{"folder":"%s","delimiter":"/","uidvalidity":7,"uidnext":%d,"messages":1,'
            b'"since":%s,"checkpoint":true}\n' % (folder, uidnext, since))


def test_a_checkpoint_from_since_on_never_moves_a_folder_back(tmp_path):
    """imapstream(7), Folder checkpoint: one of the whole folder replaces the recorded
    one (a lower uidnext: a server restored); one listed from since on only moves on."""
    path = str(tmp_path / "INBOX.mbox")
    message = b'{"folder":"INBOX","delimiter":"/","uidvalidity":7,"uid":1,"length":3}\nx\r\n\n'
    recorded = b'{"folder":"INBOX","delimiter":"/","uidvalidity":7,"uidnext":%d,"file":"%s"}\n'

    def after(*checkpoints):
        assert run(mbox_merge, [path], b"".join(checkpoints))[0] == 0
        status, out = run(mbox_ids, ["--folders", path])
        assert status == 0
        return out

    assert after(message, mark(10)) == recorded % (10, path.encode())
    assert after(mark(5, since=b"3")) == recorded % (10, path.encode())
    assert after(mark(12, since=b"10")) == recorded % (12, path.encode())
    assert after(mark(5)) == recorded % (5, path.encode())


def test_a_held_back_folder_s_checkpoint_turns_false(tmp_path, capsys):
    """mbox-ids --missing holds back the records of a folder whose file is not an mbox,
    so its checkpoint no longer vouches for it and says it failed; another folder's is
    passed on as it is."""
    (tmp_path / "INBOX.mbox").write_bytes(b"not an mbox\n")
    listing = (b'{"folder":"INBOX","delimiter":"/","uidvalidity":7,"uid":1}\n' + mark(2)
               + mark(3, b"Other"))
    assert run(mbox_ids, ["--missing", "-d", str(tmp_path)], listing) == (
        65, mark(2).replace(b"true", b'false,"failed":true') + mark(3, b"Other"))
    assert "its folder's records are held back" in capsys.readouterr().err
