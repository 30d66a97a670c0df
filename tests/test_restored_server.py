"""A Dovecot restored from a file-level backup of its maildir: the same UIDVALIDITY,
a lower UIDNEXT, and the UIDs the backup holds given to new messages.  Every message
the server ever showed stays in the backup, and the new ones are stored beside those
whose UIDs they took."""

import subprocess

import pytest
from plumbing import pipeline, run

from imapstream.commands import imap_list
from imapstream.mbox.reader import scan
from imapstream.message import to_lf


def mail(tag, number):
    return (b"Subject: %s %d\r\nMessage-ID: <%s%d@restored>\r\n\r\n%s text %d\r\n"
            % (tag, number, tag, number, tag, number))


def held(directory):
    """[(uid, LF bytes)] of INBOX in the backup, in file order."""
    return [(record["uid"], data) for _o, record, data in scan(f"{directory}/INBOX.mbox")]


@pytest.fixture
def server(dovecot, new_user, monkeypatch, tmp_path):
    """(append(tag, numbers), snapshot(), restore()) for a fresh user whose IMAP_*
    variables are set: its maildir copied aside with cp -a (indexes and
    dovecot-uidlist too, owners kept) and put back."""
    user, _password = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    maildir, saved = dovecot.home(user) / "Maildir", tmp_path / "saved"

    def append(tag, numbers):
        with dovecot.client(user) as client:
            for number in numbers:
                client.append("INBOX", mail(tag, number))

    def snapshot():
        subprocess.run(["cp", "-a", str(maildir), str(saved)], check=True)

    def restore():
        subprocess.run(["rm", "-rf", str(maildir)], check=True)
        subprocess.run(["cp", "-a", str(saved), str(maildir)], check=True)
        with dovecot.client(user) as client:
            return client.folder_status("INBOX", [b"UIDVALIDITY", b"UIDNEXT"])

    return append, snapshot, restore


@pytest.mark.parametrize("since", [True, False], ids=["since", "whole"])
def test_new_messages_on_uids_the_backup_holds_are_stored(server, tmp_path, since):
    """A1-A4 snapshotted, A5 and A6 backed up, the maildir restored (UIDNEXT 7 -> 5);
    then B1 gets UID 5 (UIDNEXT 6, below the checkpoint of 7), a run; then B2 gets UID
    6 (UIDNEXT 7, the checkpoint's, were it kept), a run.  Each B is stored, A5 and A6
    kept; a last run adds nothing."""
    append, snapshot, restore = server
    backup = str(tmp_path / "backup")
    options = ["--since", backup] if since else []
    append(b"A", range(1, 5))
    snapshot()
    append(b"A", range(5, 7))
    assert pipeline(backup, *options) == [0] * 4
    uidvalidity = run(imap_list, [])[1].split(b'"uidvalidity":')[1].split(b",")[0]
    assert restore() == {b"UIDVALIDITY": int(uidvalidity), b"UIDNEXT": 5}
    append(b"B", [1])
    assert pipeline(backup, *options) == [0] * 4
    append(b"B", [2])
    assert pipeline(backup, *options) == [0] * 4
    assert pipeline(backup, *options) == [0] * 4
    assert held(backup) == [(n, to_lf(mail(b"A", n))) for n in range(1, 7)] + [
        (5, to_lf(mail(b"B", 1))), (6, to_lf(mail(b"B", 2)))]


def test_a_restored_server_that_caught_up_is_listed_whole(server, tmp_path, capsys):
    """Restored (UIDNEXT 7 -> 5), then B1-B3 before the next run: UIDNEXT 8 is above the
    checkpoint of 7, so --since would list UID 7 alone; the message the backup holds
    with the highest UID below 7 (A6) is asked for, and the server's UID 6 is B2: the
    folder is listed whole, with a warning, and B1-B3 are stored."""
    append, snapshot, restore = server
    backup = str(tmp_path / "backup")
    append(b"A", range(1, 5))
    snapshot()
    append(b"A", range(5, 7))
    assert pipeline(backup, "--since", backup) == [0] * 4
    restore()
    append(b"B", [1, 2, 3])
    capsys.readouterr()
    assert pipeline(backup, "--since", backup) == [0] * 4
    assert capsys.readouterr().err.splitlines()[0] == (
        "imap-list: INBOX: UID 6 is another message than the backup holds: the server was "
        "restored from a backup; listing it whole")
    assert pipeline(backup, "--since", backup) == [0] * 4
    assert held(backup) == [(n, to_lf(mail(b"A", n))) for n in range(1, 7)] + [
        (n + 4, to_lf(mail(b"B", n))) for n in range(1, 4)]
