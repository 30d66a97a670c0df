"""The backup follows the server (imapstream(7), "Update record", "Flag journal"):
flags changed and messages expunged on a real Dovecot with CONDSTORE and QRESYNC reach
the backup through one CHANGEDSINCE FETCH, no body fetched again; the file as Python's
mailbox and Dovecot's mbox driver read it has the server's flags; messages gone from
the server stay, marked, are left out of a restore and --check's "only in the backup",
and go with --prune-deleted."""

import io
import mailbox
import os

import orjson
import pytest
from plumbing import append_all, as_documented, run

from imapstream.commands import imap_append, imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.imap import transport
from imapstream.mbox import flagjournal

MESSAGES = [b"Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n" % (n, n, n)
            for n in range(1, 9)]  # UIDs 1 to 8
FIRST_FLAGS = [(b"\\Seen",), (), (), (b"\\Seen", b"\\Answered"), (), (b"\\Flagged",), (), ()]


def records(ndjson):
    return [orjson.loads(line) for line in ndjson.splitlines() if line.strip()]


def incremental(directory):
    """imap-list --all --since DIR | mbox-ids --missing | imap-fetch | mbox-merge; the
    four statuses and the listing."""
    statuses, data, listing = [], b"", None
    for module, argv in ((imap_list, ["--all", "--since", directory]),
                         (mbox_ids, ["--missing", "-d", directory]), (imap_fetch, []),
                         (mbox_merge, ["-d", directory])):
        status, data = run(module, argv, data)
        statuses.append(status)
        listing = data if listing is None else listing
    return statuses, listing


@pytest.fixture
def followed(account, dovecot, tmp_path, monkeypatch):
    """(client, user, backup dir, the commands the plumbing sent) after a first backup
    of MESSAGES and then, on the server: \\Seen on 2, \\Flagged and Work on 3, \\Seen
    off 1, \\Answered off 4, 7 expunged."""
    for data, flags in zip(MESSAGES, FIRST_FLAGS, strict=True):
        append_all(account, "INBOX", [data], flags=flags)
    directory = str(tmp_path / "backup")
    os.makedirs(directory)
    assert incremental(directory)[0] == [0, 0, 0, 0]
    user = os.environ["IMAP_USER"]
    for args in (("add", "\\Seen", "2"), ("add", "\\Flagged Work", "3"),
                 ("remove", "\\Seen", "1"), ("remove", "\\Answered", "4")):
        dovecot.doveadm("flags", args[0], "-u", user, args[1], "mailbox", "INBOX",
                        "uid", args[2])
    dovecot.doveadm("expunge", "-u", user, "mailbox", "INBOX", "uid", "7")
    sent = []
    original = transport._Guarded.send

    def traced(self, data):
        sent.append(bytes(data))
        return original(self, data)

    monkeypatch.setattr(transport._Guarded, "send", traced)
    return account, user, directory, sent


WANTED = {1: [], 2: ["\\Seen"], 3: ["Work", "\\Flagged"], 4: ["\\Seen"], 5: [],
          6: ["\\Flagged"], 8: []}


def file_flags(path):
    """{uid: sorted flags} of an mbox file by the rules of imapstream(7) alone."""
    with open(path, "rb") as f:
        text = f.read()
    uids = [int(line.split(b"uid=")[1].split(b";")[0])
            for line in text.splitlines() if line.startswith(b"X-Imapstream: ")]
    return {uid: sorted(flags) for uid, (_folder, _data, flags)
            in zip(uids, as_documented(text), strict=True)}


def test_flags_and_expunges_follow_with_no_body_fetched(followed):
    client, _user, directory, sent = followed
    statuses, listing = incremental(directory)
    assert statuses == [0, 0, 0, 0]
    commands = b"".join(sent)
    assert b"BODY.PEEK[]" not in commands and b"BODY[]" not in commands
    assert commands.count(b"CHANGEDSINCE") == 1 and b"VANISHED" in commands
    updates = [r for r in records(listing) if "update" in r]
    assert sorted((r["uid"], r["update"]) for r in updates) == [
        (1, "flags"), (2, "flags"), (3, "flags"), (4, "flags"), (7, "vanished")]
    path = os.path.join(directory, "INBOX.mbox")
    # The file itself, as documented, as Python's mailbox reads it, and as mbox-ids.
    assert file_flags(path) == {**WANTED, 7: []}
    box = mailbox.mbox(path)
    assert [sorted(m.get_flags()) for m in box] == [
        ["O"], ["O", "R"], ["F", "O"], ["O", "R"], ["O"], ["F", "O"], ["O"], ["O"]]
    held = {r["uid"]: r for r in records(run(mbox_ids, ["-d", directory])[1])}
    assert {uid: sorted(r["flags"]) for uid, r in held.items() if uid != 7} == WANTED
    assert "missing_since" in held[7] and not any(
        "missing_since" in r for uid, r in held.items() if uid != 7)
    # Nothing more: the next run lists no update and changes no byte.
    before = {name: open(os.path.join(directory, name), "rb").read()
              for name in os.listdir(directory)}
    statuses, listing = incremental(directory)
    assert statuses == [0, 0, 0, 0]
    assert [r for r in records(listing) if "uid" in r] == []
    assert {name: open(os.path.join(directory, name), "rb").read()
            for name in os.listdir(directory)} == before


def test_dovecot_mbox_driver_reads_the_current_flags(followed, dovecot, new_user):
    _client, _user, directory, _sent = followed
    assert incremental(directory)[0] == [0, 0, 0, 0]
    user, _ = new_user("mbox")
    with open(os.path.join(directory, "INBOX.mbox"), "rb") as f:
        dovecot.write_mail_file(user, "mail/Copy", f.read())
    with dovecot.client(user) as driver:
        driver.select_folder("Copy", readonly=True)
        fetched = driver.fetch(driver.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS "
                                                             "(SUBJECT)]"])
    got = {int(item[b"BODY[HEADER.FIELDS (SUBJECT)]"].split()[1][1:]):
           sorted(f.decode() for f in item[b"FLAGS"] if f != b"\\Recent")
           for item in fetched.values()}
    # Dovecot takes keywords from X-Keywords only once X-IMAPbase declares them.
    assert got == {uid: [f for f in flags if f.startswith("\\")]
                   for uid, flags in {**WANTED, 7: []}.items()}


def test_restore_has_the_latest_flags_and_leaves_out_the_deleted(followed, dovecot,
                                                                   new_user, monkeypatch):
    _client, _user, directory, _sent = followed
    assert incremental(directory)[0] == [0, 0, 0, 0]
    target, _ = new_user("fs")
    for key, value in dovecot.env(target).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["-d", directory])[0] == 0
    with dovecot.client(target) as restored:
        restored.select_folder("INBOX", readonly=True)
        fetched = restored.fetch(restored.search("ALL"), ["FLAGS", "BODY.PEEK[]"])
    got = {int(item[b"BODY[]"].split(b"\r\n")[0][10:]):
           sorted(f.decode() for f in item[b"FLAGS"] if f != b"\\Recent")
           for item in fetched.values()}
    assert got == WANTED
    assert run(imap_append, ["-d", directory, "--include-deleted"])[0] == 0
    with dovecot.client(target) as restored:
        restored.select_folder("INBOX", readonly=True)
        assert len(restored.search("ALL")) == len(MESSAGES)


def test_check_counts_the_deleted_apart(followed):
    _client, _user, directory, _sent = followed
    assert incremental(directory)[0] == [0, 0, 0, 0]
    status, out = run(mbox_ids, ["--check", "-d", directory], run(imap_list, ["--all"])[1])
    assert status == 0
    assert records(out) == [{"folder": "INBOX", "file": os.path.join(directory, "INBOX.mbox"),
                             "server": 7, "backup": 8, "missing": 0, "deleted": 1,
                             "only_in_backup": 0}]


def test_prune_deleted_removes_them_and_keeps_the_rest(followed):
    _client, _user, directory, _sent = followed
    assert incremental(directory)[0] == [0, 0, 0, 0]
    path = os.path.join(directory, "INBOX.mbox")
    assert run(mbox_merge, ["-d", directory, "--prune-deleted", "1d"]) == (0, b"")
    assert 7 in file_flags(path)
    assert run(mbox_merge, ["-d", directory, "--prune-deleted"]) == (0, b"")
    assert file_flags(path) == WANTED
    assert not os.path.exists(flagjournal.path_for(path))
    held = records(run(mbox_ids, ["-d", directory])[1])
    assert [r["uid"] for r in held] == sorted(WANTED)
    statuses, listing = incremental(directory)  # the sidecar still describes the file
    assert statuses == [0, 0, 0, 0] and [r for r in records(listing) if "uid" in r] == []


def test_refresh_flags_compares_a_whole_listing(followed):
    """--refresh-flags (a server without CONDSTORE): the whole folder listed, the flags
    of the messages held compared, those not listed marked gone; no body fetched."""
    _client, _user, directory, sent = followed
    status, listing = run(imap_list, ["--all", "--since", directory, "--refresh-flags"])
    assert status == 0 and b"CHANGEDSINCE" not in b"".join(sent)
    status, missing = run(mbox_ids, ["--missing", "-d", directory], listing)
    assert status == 0
    assert sorted((r["uid"], r.get("update")) for r in records(missing) if "uid" in r) == [
        (1, "flags"), (2, "flags"), (3, "flags"), (4, "flags"), (7, "vanished")]
    assert run(mbox_merge, ["-d", directory], run(imap_fetch, [], missing)[1])[0] == 0
    assert b"BODY.PEEK[]" not in b"".join(sent)
    assert file_flags(os.path.join(directory, "INBOX.mbox")) == {**WANTED, 7: []}


def test_a_torn_journal_line_is_not_read(tmp_path):
    mbox = str(tmp_path / "INBOX.mbox")
    good = b'{"folder":"INBOX","uidvalidity":5,"uid":1,"flags":["\\\\Seen"]}\n'
    with open(flagjournal.path_for(mbox), "wb") as f:
        f.write(good + b'{"folder":"INBOX","uidvalidity":5,"uid":1,"flags":[]')
    journal = flagjournal.read(mbox)
    assert journal.entries == {("INBOX", 5, 1): {"flags": ["\\Seen"]}}
    flagjournal.append(mbox, [b'{"folder":"INBOX","uidvalidity":5,"uid":2,'
                              b'"missing_since":"2026-01-01T00:00:00+00:00"}\n'])
    with open(flagjournal.path_for(mbox), "rb") as f:
        assert f.read() == good + (b'{"folder":"INBOX","uidvalidity":5,"uid":2,'
                                   b'"missing_since":"2026-01-01T00:00:00+00:00"}\n')


def test_update_records_pass_imap_fetch_unfetched():
    update = {"folder": "INBOX", "delimiter": "/", "uidvalidity": 5, "uid": 3,
              "flags": ["\\Seen"], "modseq": 9, "update": "flags"}
    line = orjson.dumps(update) + b"\n"
    out = io.BytesIO()
    assert imap_fetch.main([], io.BytesIO(line), out) == 0  # no server: nothing fetched
    assert out.getvalue() == line


def _stream(count):
    """A message stream of count messages of INBOX (UIDVALIDITY 7), none flagged."""
    parts = []
    for uid in range(1, count + 1):
        data = b"Subject: n%d\r\nMessage-ID: <n%d@x>\r\n\r\n%s\r\n" % (uid, uid, b"x" * 600)
        parts.append(orjson.dumps({"folder": "INBOX", "delimiter": "/", "uidvalidity": 7,
                                   "uid": uid, "size": len(data), "flags": [],
                                   "internaldate": "2005-07-01T10:00:00+00:00",
                                   "length": len(data)}) + b"\n" + data + b"\n")
    return b"".join(parts)


def test_kill_9_during_a_flag_update_leaves_old_or_new_flags(tmp_path):
    """mbox-merge killed at a random moment while it journals and folds flag updates:
    the file stays whole, each message has its old flags or its new ones (in the file
    as documented, and with the journal applied), and the next run finishes the fold."""
    import random
    import shutil
    import signal
    import subprocess
    import sys
    import time

    count, changed = 1500, range(1, 1501, 7)
    base = tmp_path / "base"
    assert run(mbox_merge, ["-d", str(base)], _stream(count))[0] == 0
    updates = b"".join(orjson.dumps({"folder": "INBOX", "delimiter": "/", "uidvalidity": 7,
                                     "uid": uid, "flags": ["\\Seen", "\\Flagged"],
                                     "update": "flags"}) + b"\n" for uid in changed)
    new = {uid: (["\\Flagged", "\\Seen"] if uid in changed else []) for uid in
           range(1, count + 1)}
    old = dict.fromkeys(new, [])
    (tmp_path / "updates").write_bytes(updates)
    merge = os.path.join(os.path.dirname(sys.executable), "mbox-merge")
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1 << 32))
    print(f"CRASH_SEED={seed}")
    rng = random.Random(seed)
    for attempt in range(6):
        directory = tmp_path / f"kill{attempt}"
        shutil.copytree(base, directory)
        with open(tmp_path / "updates", "rb") as stdin:
            process = subprocess.Popen([merge, "-d", str(directory)], stdin=stdin,
                                       stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.02, 0.5))
            process.send_signal(signal.SIGKILL)
            process.wait()
        path = str(directory / "INBOX.mbox")
        assert len(mailbox.mbox(path)) == count, seed
        in_file = file_flags(path)
        held = {r["uid"]: sorted(r["flags"]) for r in records(run(mbox_ids, [path])[1])}
        for uid in new:
            assert in_file[uid] in (old[uid], new[uid]), (seed, uid)
            assert held[uid] in (old[uid], new[uid]), (seed, uid)
        with open(tmp_path / "updates", "rb") as stdin:
            assert subprocess.run([merge, "-d", str(directory)], stdin=stdin).returncode == 0
        assert file_flags(path) == new, seed
        assert sorted(os.listdir(directory)) == [".INBOX.mbox.ids", "INBOX.mbox"], seed


def test_imapbackup_follows_and_prunes(followed, dovecot, tmp_path):
    """The porcelain: a run follows the changes, --check counts the deleted apart,
    --prune-deleted=1d keeps a message gone for less than a day, --prune-deleted
    removes it."""
    import subprocess

    from conftest import REPO, command_env

    _client, user, directory, _sent = followed
    env = command_env(dovecot, user, tmp_path / "home")

    def imapbackup(*argv):
        done = subprocess.run([str(REPO / "bin" / "imapbackup"), "-d", directory, *argv],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    imapbackup("--nospinner")
    path = os.path.join(directory, "INBOX.mbox")
    assert file_flags(path) == {**WANTED, 7: []}
    assert imapbackup("--check").stdout == (
        "CHECK: INBOX: 7 on the server, 8 in the backup, 0 missing, 1 deleted on the "
        "server, 0 only in the backup\n")
    imapbackup("--prune-deleted=1d")
    assert 7 in file_flags(path)
    imapbackup("--prune-deleted")
    assert file_flags(path) == WANTED


def test_a_refused_enable_asks_no_vanished_and_counts_the_deletion(followed, monkeypatch):
    """A server that offers QRESYNC and answers ENABLE QRESYNC with NO (Dovecot never
    does: its answer is turned into a refusal as the plumbing reads it): the changes
    still come with CHANGEDSINCE, no VANISHED is asked of it (not enabled, that would be
    a BAD), and the message it expunged is found by counting, as without QRESYNC."""
    _client, _user, directory, sent = followed
    read = transport._Guarded.readline
    refused = []

    def refusing(self):
        line = read(self)
        tag = self.enable_tag
        if line.startswith(b"* ENABLED "):
            return b"* OK nothing enabled here\r\n"
        if tag and line.startswith(tag + b" OK"):
            refused.append(tag)
            return tag + b" NO ENABLE refused here\r\n"
        return line

    monkeypatch.setattr(transport._Guarded, "readline", refusing)
    statuses, listing = incremental(directory)
    assert statuses == [0, 0, 0, 0] and refused
    commands = b"".join(sent)
    assert b"ENABLE QRESYNC" in commands and b"VANISHED" not in commands
    assert commands.count(b"CHANGEDSINCE") == 1
    updates = [r for r in records(listing) if "update" in r]
    assert sorted((r["uid"], r["update"]) for r in updates) == [
        (1, "flags"), (2, "flags"), (3, "flags"), (4, "flags"), (7, "vanished")]
    assert file_flags(os.path.join(directory, "INBOX.mbox")) == {**WANTED, 7: []}
