"""Is my backup complete?  imap-list --all | mbox-ids --check -d DIR, and imapbackup
--check which runs it: per folder the messages on the server, in the backup, missing
from it and held only in it; exit 0 only if nothing is missing."""

import json
import re
import subprocess

from conftest import command_env

RECIPE = "imap-list --all | mbox-ids --check -d backup"
BACKUP = "imap-list --all | mbox-ids --missing -d backup | imap-fetch | mbox-merge -d backup"


def records(done):
    return sorted((json.loads(line) for line in done.stdout.splitlines()),
                  key=lambda record: record["folder"])


def shell(env, command, cwd):
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_check_counts_per_folder_and_fails_only_for_missing_messages(dovecot, new_user,
                                                                      tmp_path):
    user, _ = new_user("fs")
    env = command_env(dovecot, user, tmp_path)
    with dovecot.client(user) as client:
        for folder in ("Keep", "Gone"):
            client.create_folder(folder)
            for number in range(3):
                client.append(folder, f"Subject: {folder} {number}\r\n\r\nbody\r\n".encode())
    backup = shell(env, BACKUP, tmp_path)
    assert backup.returncode == 0, backup.stderr
    complete = shell(env, RECIPE, tmp_path)
    assert complete.returncode == 0, complete.stderr
    assert records(complete) == [
        {"folder": folder, "file": f"backup/{folder}.mbox", "server": 3, "backup": 3,
         "missing": 0, "deleted": 0, "only_in_backup": 0} for folder in ("Gone", "Keep")]
    with dovecot.client(user) as client:
        client.select_folder("Gone")
        client.delete_messages([1])
        client.expunge()
        client.append("Keep", b"Subject: new\r\n\r\nnot backed up yet\r\n")
    behind = shell(env, RECIPE, tmp_path)
    assert behind.returncode == 1, behind.stderr
    assert records(behind) == [
        {"folder": "Gone", "file": "backup/Gone.mbox", "server": 2, "backup": 3,
         "missing": 0, "deleted": 0, "only_in_backup": 1},
        {"folder": "Keep", "file": "backup/Keep.mbox", "server": 4, "backup": 3,
         "missing": 1, "deleted": 0, "only_in_backup": 0}]
    with dovecot.client(user) as client:
        client.delete_folder("Gone")
    assert shell(env, BACKUP, tmp_path).returncode == 0  # Keep's new message
    gone = shell(env, RECIPE, tmp_path)  # only held in the backup: still complete
    assert gone.returncode == 0 and records(gone)[0] == {
        "folder": "Gone", "file": "backup/Gone.mbox", "server": 0, "backup": 3,
        "missing": 0, "deleted": 0, "only_in_backup": 3}


def test_a_check_stopped_by_a_fatal_error_says_the_cause_alone(dovecot, new_user, tmp_path):
    """No server, or the login refused: one line, the plumbing's, and its status."""
    user, _ = new_user("fs")
    env = command_env(dovecot, user, tmp_path)
    for changed, status in (({"IMAP_SERVER": "127.0.0.1:1"}, 69),
                            ({"IMAP_PASSWORD": "wrong"}, 77)):
        for json_option in ([], ["--json"]):
            done = subprocess.run(["imapbackup", "--check", "-d", str(tmp_path), *json_option],
                                  env=dict(env, **changed), capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=60)
            assert done.returncode == status
            assert re.fullmatch(r"imap-list: [^\n]*\n", done.stderr), done.stderr
            assert done.stdout == ""
