"""Deletions found without QRESYNC (imapstream(7), "Update record"): a real Dovecot that
offers neither CONDSTORE nor QRESYNC, and one that offers CONDSTORE alone (as Gmail
does).  A folder whose STATUS counts fewer messages than the backup holds (and new UIDs
could explain) has its UIDs listed and the held ones gone marked missing; a folder whose
counts agree costs no command more."""

import contextlib
import os
import re
import shutil
import tempfile

import orjson
import pytest
from dovecot import Dovecot, DovecotError
from plumbing import append_all, as_documented, run

from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.imap import listing_ahead, store, transport
from imapstream.mbox import flagjournal

BASE = ("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ NAMESPACE UIDPLUS "
        "CHILDREN UNSELECT LIST-EXTENDED LIST-STATUS SPECIAL-USE MOVE")
KINDS = {"neither": BASE, "condstore": BASE + " CONDSTORE"}
MESSAGES = [b"Subject: m%d\r\nMessage-ID: <m%d@x>\r\n\r\nbody %d\r\n" % (n, n, n)
            for n in range(1, 9)]  # UIDs 1 to 8
TAGGED = re.compile(rb"(?m)^[A-Z]{4}\d+ ((?:UID )?[A-Z]+)")


@pytest.fixture(scope="module", params=sorted(KINDS))
def server(request):
    directory = tempfile.mkdtemp(prefix="imapstream-dovecot-")
    os.chmod(directory, 0o755)
    dovecot = Dovecot(directory, f"imap_capability = {KINDS[request.param]}\n")
    try:
        if not dovecot.available:
            pytest.skip("dovecot not installed")
        try:
            dovecot.start()
        except (DovecotError, OSError) as exc:
            pytest.fail(f"could not start dovecot: {exc}")
        yield request.param, dovecot
    finally:
        dovecot.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)


@pytest.fixture
def backed_up(server, tmp_path, monkeypatch):
    """(kind, dovecot, user, backup dir, commands sent) after a first backup of
    MESSAGES in INBOX and two in Other."""
    kind, dovecot = server
    user, _password = dovecot.new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    with dovecot.client(user) as client:
        assert (b"CONDSTORE" in client.capabilities()) == (kind == "condstore")
        assert b"QRESYNC" not in client.capabilities()
        client.create_folder("Other")
        append_all(client, "INBOX", MESSAGES)
        append_all(client, "Other", MESSAGES[:2])
    directory = str(tmp_path / "backup")
    os.makedirs(directory)
    assert incremental(directory)[0] == [0, 0, 0, 0]
    sent = []
    original = transport._Guarded.send

    def traced(self, data):
        sent.append(bytes(data))
        return original(self, data)

    monkeypatch.setattr(transport._Guarded, "send", traced)
    return kind, dovecot, user, directory, sent


def incremental(directory, *list_options):
    statuses, data, listing = [], b"", None
    for module, argv in ((imap_list, ["--all", "--since", directory, *list_options]),
                         (mbox_ids, ["--missing", "-d", directory]), (imap_fetch, []),
                         (mbox_merge, ["-d", directory])):
        status, data = run(module, argv, data)
        statuses.append(status)
        listing = data if listing is None else listing
    return statuses, listing


def uidvalidity(directory):
    """INBOX's, as the backup holds it."""
    return next(r["uidvalidity"] for r in records(run(mbox_ids, ["-d", directory])[1])
                if r["folder"] == "INBOX")


def records(ndjson):
    return [orjson.loads(line) for line in ndjson.splitlines() if line.strip()]


def commands(sent):
    """The commands of a run as [b"EXAMINE", b"UID FETCH", ...], and empties sent."""
    found = TAGGED.findall(b"".join(sent))
    sent.clear()
    return found


def contents(directory):
    return {name: open(os.path.join(directory, name), "rb").read()
            for name in sorted(os.listdir(directory))}


def test_expunged_marked_missing_and_nothing_else(backed_up):
    kind, dovecot, user, directory, sent = backed_up
    assert incremental(directory) == ([0, 0, 0, 0], incremental(directory)[1])
    commands(sent)
    _statuses, listing = incremental(directory)
    quiet = commands(sent)
    assert [r for r in records(listing) if "uid" in r] == []
    before = contents(directory)
    for uid in ("3", "5"):
        dovecot.doveadm("expunge", "-u", user, "mailbox", "INBOX", "uid", uid)
    statuses, listing = incremental(directory)
    assert statuses == [0, 0, 0, 0]
    wire = b"".join(sent)
    marked = commands(sent)
    assert [r["uid"] for r in records(listing) if "uid" in r] == [3, 5]
    assert {r["update"] for r in records(listing) if "uid" in r} == {"vanished"}
    assert marked.count(b"FETCH") == quiet.count(b"FETCH") + 1  # the FETCH 1:6 (UID)
    assert re.search(rb"(?m)^[A-Z]{4}\d+ FETCH 1:6 \(UID\)\r$", wire)
    held = {r["uid"]: r for r in records(run(mbox_ids, ["-d", directory])[1])
            if r["folder"] == "INBOX"}
    assert sorted(held) == list(range(1, 9))
    assert sorted(uid for uid, r in held.items() if "missing_since" in r) == [3, 5]
    after = contents(directory)
    assert after["INBOX.mbox"] == before["INBOX.mbox"]
    assert after["Other.mbox"] == before["Other.mbox"]
    assert as_documented(after["INBOX.mbox"])  # still an mbox as documented
    # Known missing now: the next runs cost what a quiet one does and change nothing.
    for _ in range(2):
        statuses, listing = incremental(directory)
        assert statuses == [0, 0, 0, 0] and [r for r in records(listing) if "uid" in r] == []
        assert commands(sent) == quiet
        assert contents(directory) == after
    print(f"{kind}: commands of a quiet run {len(quiet)}, with a deletion {len(marked)}")


def test_a_deletion_hidden_by_a_new_message_is_found(backed_up, monkeypatch):
    """One expunged, one new: STATUS counts as many messages as the backup holds, but
    the new UID accounts for one of them.  The flags journal has a line for another
    message, which counts for nothing.  The UIDs are listed 3 at a time."""
    _kind, dovecot, user, directory, sent = backed_up
    monkeypatch.setattr(store, "UID_CHUNK", 3)
    mbox = os.path.join(directory, "INBOX.mbox")
    flagjournal.append(mbox, [flagjournal.line({"folder": "INBOX", "uidvalidity": uidvalidity(
        directory), "uid": 2, "flags": ["\\Seen"]}, "flags")])  # a line not yet folded
    dovecot.doveadm("expunge", "-u", user, "mailbox", "INBOX", "uid", "4")
    with dovecot.client(user) as client:
        append_all(client, "INBOX", [b"Subject: new\r\nMessage-ID: <new@x>\r\n\r\nnew\r\n"])
    statuses, listing = incremental(directory)
    assert statuses == [0, 0, 0, 0]
    assert re.findall(rb"(?m)^[A-Z]{4}\d+ FETCH ([\d:,]+) \(UID\)\r$", b"".join(sent)) == [
        b"1:3", b"4:6", b"7:8"]
    listed = records(listing)
    assert [(r["uid"], r.get("update")) for r in listed if "uid" in r] == [
        (9, None), (4, "vanished")]
    held = {r["uid"]: r for r in records(run(mbox_ids, ["-d", directory])[1])
            if r["folder"] == "INBOX"}
    assert sorted(held) == list(range(1, 10))
    assert [uid for uid, r in held.items() if "missing_since" in r] == [4]
    statuses, listing = incremental(directory)
    assert statuses == [0, 0, 0, 0] and [r for r in records(listing) if "uid" in r] == []


def test_gone_leaves_out_the_uids_listed_and_those_known_missing():
    from imapstream.mbox.present import Present, gone

    held = Present([(1, 10), (20, 22), (30, 30)], [4, 5, 9, 21], 11)
    assert list(gone(held, [1, 2, 3, 7, 20, 25])) == [
        (6, 6), (8, 8), (10, 10), (22, 22), (30, 30)]
    assert list(gone(held, iter([]))) == [(1, 3), (6, 8), (10, 10), (20, 20), (22, 22),
                                          (30, 30)]
    assert list(gone(held, range(1, 31))) == []


@pytest.mark.parametrize("enable", [True, False])
def test_a_server_that_enables_what_it_hides_gets_a_session_as_it_says(backed_up,
                                                                      monkeypatch, enable):
    """imap-list's ENABLE QRESYNC and LIST-STATUS with HIGHESTMODSEQ go behind its LOGIN
    (listing_ahead.py).  This Dovecot, told to hide QRESYNC (and CONDSTORE), enables
    them all the same (ENABLED QRESYNC; HIGHESTMODSEQ in STATUS), so that session ends
    unused and a new one lists, as the server says it is: a new message's record has a
    MODSEQ only where it offers CONDSTORE.  Without the ENABLE, the HIGHESTMODSEQ alone
    tells where CONDSTORE is hidden."""
    kind, dovecot, user, directory, sent = backed_up
    if not enable:
        sender = listing_ahead.sender
        monkeypatch.setattr(listing_ahead, "sender", lambda _qresync: sender(False))
    with dovecot.client(user) as client:
        append_all(client, "INBOX", [b"Subject: h\r\nMessage-ID: <hide@x>\r\n\r\nh\r\n"])
    sent.clear()
    status, listing = run(imap_list, ["--all", "--since", directory])
    assert status == 0
    sessions = b"".join(sent).split(b" LOGOUT\r\n")
    restarted = enable or kind == "neither"
    assert len(sessions) == (3 if restarted else 2)
    assert (b" ENABLE QRESYNC\r\n" in sessions[0]) == enable
    if restarted:
        assert b"ENABLE" not in sessions[1]
        assert (b"HIGHESTMODSEQ" in sessions[1]) == (kind == "condstore")
    new = [r for r in records(listing) if r.get("message_id") == "<hide@x>"]
    assert len(new) == 1 and ("modseq" in new[0]) == (kind == "condstore")
