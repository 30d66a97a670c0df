"""Servers that misbehave in ways no Dovecot does, played by fake_imap: a UIDNEXT that
lags behind the messages, INTERNALDATEs no calendar has, keywords no atom can be.  Each
case runs the whole pipeline and checks every message is held, byte for byte."""

import os

import pytest
from fake_imap import FakeIMAP
from plumbing import run

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox import archive
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.records import read_records


def message(number):
    return b"Subject: %d\r\nMessage-ID: <o%d@odd>\r\n\r\nbody %d\r\n" % (number, number, number)


def serve(monkeypatch, mailbox, **options):
    server = FakeIMAP(mailbox, **options)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return server


def records(out):
    return [record for _lineno, record in read_records(out.splitlines(True))]


def pipeline(directory, *list_options):
    """imap-list --all | mbox-ids --missing | imap-fetch | mbox-merge; the statuses."""
    statuses, data = [], b""
    for module, argv in ((imap_list, ["--all", *list_options]),
                         (mbox_ids, ["--missing", "-d", directory]),
                         (imap_fetch, []), (mbox_merge, ["-d", directory])):
        status, data = run(module, argv, data)
        statuses.append(status)
    return statuses


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


@pytest.mark.parametrize("uidnext", [6, 7, 9])
def test_an_exact_or_lagging_uidnext_lists_the_same(monkeypatch, tmp_path, uidnext):
    """Whether UIDNEXT is right (9) or lags (6, 7), --since a checkpoint at 5 lists UIDs
    5 to 8, and the checkpoint says the server's UIDNEXT."""
    since = tmp_path / "since.ndjson"
    since.write_text('{"folder": "INBOX", "uidvalidity": 1130, "uidnext": 5}\n')
    with serve(monkeypatch, {"INBOX": [message(n) for n in range(1, 9)]},
               uidnext={"INBOX": uidnext}):
        status, out = run(imap_list, ["INBOX", "--since", str(since)])
    assert status == errors.OK
    assert [(r.get("uid"), r.get("uidnext")) for r in records(out)] == [
        (5, None), (6, None), (7, None), (8, None), (None, uidnext)]
