"""The plumbing against a real Dovecot: count for count, byte for byte, incremental,
read-only, any hierarchy separator."""

import mailbox
import os

import pytest
from plumbing import (
    AWKWARD,
    append_all,
    backup,
    backup_messages,
    run,
    server_flags,
    server_messages,
)

from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge


def sizes(directory):
    return {name: os.path.getsize(os.path.join(directory, name))
            for name in os.listdir(directory)}


def test_every_message_is_kept_byte_for_byte(account, tmp_path):
    big = b"Subject: big\r\nMessage-ID: <big@x>\r\n\r\n" + b"0123456789abcdef" * (25 << 16)
    append_all(account, "INBOX", AWKWARD + [big])
    account.create_folder("Archive")
    append_all(account, "Archive", AWKWARD[:3])
    statuses, _, _ = backup(str(tmp_path))
    assert statuses == (0, 0, 0, 0)
    assert backup_messages(str(tmp_path)) == server_messages(account)
    assert len(backup_messages(str(tmp_path))["INBOX"]) == len(AWKWARD) + 1
    # Python's mailbox module, as other mbox readers, sees the same number of messages.
    assert len(mailbox.mbox(str(tmp_path / "INBOX.mbox"))) == len(AWKWARD) + 1


def test_reruns_fetch_nothing_and_new_mail_only_the_new(account, tmp_path):
    append_all(account, "INBOX", AWKWARD)
    backup(str(tmp_path))
    before = sizes(tmp_path)
    statuses, missing, stream = backup(str(tmp_path))
    assert statuses == (0, 0, 0, 0) and missing == b"" and stream == b""
    assert sizes(tmp_path) == before
    append_all(account, "INBOX", [b"Subject: new 1\r\n\r\nx\r\n", b"Subject: new 2\r\n\r\ny\r\n",
                                  AWKWARD[3]])
    _, missing, _ = backup(str(tmp_path))
    assert len(missing.splitlines()) == 3
    assert backup_messages(str(tmp_path)) == server_messages(account)


def test_a_uidvalidity_change_refetches_nothing(dovecot, account, tmp_path):
    append_all(account, "INBOX", AWKWARD)
    backup(str(tmp_path))
    before = sizes(tmp_path)
    dovecot.doveadm("mailbox", "update", "--uid-validity", "7", "-u",
                    os.environ["IMAP_USER"], "INBOX")
    _, missing, stream = backup(str(tmp_path))
    assert missing == b"" and stream == b"" and sizes(tmp_path) == before
    # Without mbox-ids in the pipe, mbox-merge still recognises what it holds.
    _, listed = run(imap_list, ["INBOX"])
    _, stream = run(imap_fetch, [], listed)
    assert run(mbox_merge, ["-d", str(tmp_path)], stream)[0] == 0
    assert sizes(tmp_path) == before
    # New mail under the new UIDVALIDITY is fetched once, and only once.
    append_all(account, "INBOX", [b"Subject: after the change\r\n\r\nz\r\n"])
    assert len(backup(str(tmp_path))[1].splitlines()) == 1
    assert backup(str(tmp_path))[1] == b""
    assert backup_messages(str(tmp_path)) == server_messages(account)


def test_the_server_state_is_untouched(account, tmp_path):
    append_all(account, "INBOX", AWKWARD[:6])
    append_all(account, "INBOX", AWKWARD[6:], flags=[b"\\Flagged", b"$label1"])
    before = server_flags(account)
    assert all(b"\\Seen" not in flags for flags in before.values())
    backup(str(tmp_path))
    run(imap_fetch, ["--mbox"], run(imap_list, ["INBOX"])[1])
    assert server_flags(account) == before


@pytest.mark.parametrize("account", ["fs", "maildir++"], indirect=True)
def test_hierarchy_separators_and_awkward_names(account, tmp_path):
    delimiter = account.list_folders()[0][1].decode()
    names = [delimiter.join(["Personal", "2005", "Q3"]), "Entwürfe", "with space",
             "Fish & Chips", 'say "hi"', delimiter.join(["Entwürfe", "tief"])]
    for name in names:
        account.create_folder(name)
        append_all(account, name, [b"Subject: in " + name.encode() + b"\r\n\r\nx\r\n"])
    statuses, _, _ = backup(str(tmp_path))
    assert statuses == (0, 0, 0, 0)
    held = backup_messages(str(tmp_path))
    assert held == {k: v for k, v in server_messages(account).items() if v}
    assert "Personal.2005.Q3.mbox" in os.listdir(tmp_path)
    folders = [r for r in run(imap_list, [])[1].splitlines()]
    assert len(folders) == len(names) + 3  # INBOX and the two \Noselect or real parents
    # mbox-ids lists every held message with its folder.
    _, ids = run(mbox_ids, ["-d", str(tmp_path)])
    assert len(ids.splitlines()) == len(names)
