"""Restoring Gmail's labels, against the emulator tests/fake_gmail.py and a real
Dovecot: a backup (tests/test_gmail.py) into an empty Gmail, each message once with its
labels; into Dovecot, a copy per label's folder or one copy with keywords; a Google
Takeout mbox as input, into both."""

import collections

from fake_gmail import Account, sample_account
from plumbing import run
from test_gmail import SEED, backup, messages, records, serve

from imapstream.commands import imap_append


def test_restore_into_an_empty_gmail(monkeypatch, tmp_path):
    source = sample_account(SEED)
    with serve(monkeypatch, source):
        backup(str(tmp_path))
    target = Account()
    with serve(monkeypatch, target):
        status, out = run(imap_append, ["-d", str(tmp_path), "--json"])
        assert status == 0 and len(records(out)) == len(source.messages)
        print(f"restored into an empty Gmail: {len(target.messages)} messages of "
              f"{len(source.messages)}; labels and flags right: "
              f"{sum((messages(target) & messages(source)).values())}")
        assert messages(target) == messages(source)  # bytes, labels and flags
        assert run(imap_append, ["-d", str(tmp_path)]) == (0, b"")
        assert len(target.messages) == len(source.messages)


def test_restore_into_dovecot_one_copy_per_label(monkeypatch, tmp_path, dovecot, imap_user):
    source = sample_account(SEED)
    with serve(monkeypatch, source):
        backup(str(tmp_path))
    for key, value in dovecot.env(imap_user[0]).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["-d", str(tmp_path)])[0] == 0
    names = {"\\Inbox": "INBOX", "\\Sent": "Sent", "\\Draft": "Drafts",
             "\\Important": "Important", "\\Starred": "Starred", "\\Spam": "Junk",
             "\\Trash": "Trash"}
    expected = collections.Counter()
    for m in source.messages.values():
        hidden = [x for x in ("\\Spam", "\\Trash") if x in m.labels]
        for label in hidden[:1] or m.labels or ["Archive"]:
            expected[(names.get(label, label), m.data)] += 1
    client = dovecot.client(imap_user[0])
    found = collections.Counter()
    for _flags, _delimiter, name in client.list_folders():
        client.select_folder(name, readonly=True)
        uids = client.search("ALL")
        for item in client.fetch(uids, ["BODY.PEEK[]"]).values() if uids else ():
            found[(name, item[b"BODY[]"])] += 1
    client.logout()
    print(f"restored into Dovecot: {sum(found.values())} copies of "
          f"{len(source.messages)} messages in {len({f for f, _ in found})} folders")
    assert found == expected


def test_restore_into_dovecot_once_with_keywords(monkeypatch, tmp_path, dovecot, imap_user):
    source = sample_account(SEED)
    with serve(monkeypatch, source):
        backup(str(tmp_path))
    for key, value in dovecot.env(imap_user[0]).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["-d", str(tmp_path), "--labels-as-keywords"])[0] == 0
    keyword = {"\\Starred": "\\Flagged", "\\Draft": "\\Draft", "\\Important": "$Important",
               "\\Sent": "$Sent", "Travel, 2024": "Travel,_2024",
               "Ünïcode Ärchiv": "&ANw-n&AO8-code_&AMQ-rchiv"}
    expected = collections.Counter()
    for m in source.messages.values():
        place = next((x for x in ("\\Spam", "\\Trash", "\\Inbox") if x in m.labels), None)
        folder = {"\\Spam": "Junk", "\\Trash": "Trash", "\\Inbox": "INBOX"}.get(place, "Archive")
        flags = {keyword.get(x, x) for x in m.labels if x != place} | set(m.flags)
        expected[(folder, m.data, frozenset(flags))] += 1
    client = dovecot.client(imap_user[0])
    found = collections.Counter()
    for _flags, _delimiter, name in client.list_folders():
        client.select_folder(name, readonly=True)
        uids = client.search("ALL")
        for item in client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]).values() if uids else ():
            flags = frozenset(f.decode() for f in item[b"FLAGS"] if f != b"\\Recent")
            found[(name, item[b"BODY[]"], flags)] += 1
    client.logout()
    assert found == expected


TAKEOUT = (
    b"From 1790000000000000001@xxx Mon Jan 01 10:00:00 +0000 2024\n"
    b"X-GM-THRID: 1790000000000000001\n"
    b"X-Gmail-Labels: Inbox,Important,Opened,Category Updates,\"Travel, 2024\"\n"
    b"Subject: one\nMessage-ID: <one@x>\n\n>From the body\n\n"
    b"From 1790000000000000002@xxx Tue Jan 02 10:00:00 +0000 2024\n"
    b"X-GM-THRID: 1790000000000000001\n"
    b"X-Gmail-Labels: Archived,Unread\n"
    b"Subject: two\nMessage-ID: <two@x>\n\ntwo\n\n"
    b"From 1790000000000000003@xxx Wed Jan 03 10:00:00 +0000 2024\n"
    b"X-GM-THRID: 1790000000000000003\n"
    b"X-Gmail-Labels: Trash,Sent,Opened\n"
    b"Subject: three\n\nthree\n\n")


def test_a_takeout_mbox_restores_into_gmail(monkeypatch):
    target = Account()
    with serve(monkeypatch, target):  # twice, as in Takeout's files per label: once
        assert run(imap_append, ["--from-stream"], TAKEOUT + TAKEOUT)[0] == 0
    assert messages(target) == collections.Counter({
        (b"Subject: one\r\nMessage-ID: <one@x>\r\n\r\nFrom the body\r\n",
         frozenset({"\\Inbox", "\\Important", "Travel, 2024"}), frozenset({"\\Seen"})): 1,
        (b"Subject: two\r\nMessage-ID: <two@x>\r\n\r\ntwo\r\n", frozenset(), frozenset()): 1,
        (b"Subject: three\r\n\r\nthree\r\n", frozenset({"\\Trash", "\\Sent"}),
         frozenset({"\\Seen"})): 1})


def test_a_takeout_mbox_restores_into_dovecot(monkeypatch, dovecot, imap_user):
    for key, value in dovecot.env(imap_user[0]).items():
        monkeypatch.setenv(key, value)
    assert run(imap_append, ["--from-stream"], TAKEOUT)[0] == 0
    client = dovecot.client(imap_user[0])
    found = {}
    for _flags, _delimiter, name in client.list_folders():
        client.select_folder(name, readonly=True)
        uids = client.search("ALL")
        found[name] = sorted(i[b"BODY[]"].split(b"\r\n")[0] for i in
                             client.fetch(uids, ["BODY.PEEK[]"]).values()) if uids else []
    client.logout()
    assert {k: v for k, v in found.items() if v} == {
        "INBOX": [b"Subject: one"], "Important": [b"Subject: one"],
        "Travel, 2024": [b"Subject: one"], "Archive": [b"Subject: two"],
        "Trash": [b"Subject: three"]}
