"""The README's examples, run as written against a real Dovecot holding the sample mail.

Each tested code block in README.md follows a line
``<!-- tested by tests/test_readme.py: NAME -->``."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import sample_mail
from conftest import command_env

from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"<!-- tested by tests/test_readme.py: (\S+) -->\n```\w*\n(.*?)```", re.S)
EXAMPLES = dict(BLOCK.findall((REPO / "README.md").read_text()))


def run(script, env, cwd):
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


def messages_in(path):
    return Counter(record["folder"] for _offset, record, _data in scan(str(path)))


def test_the_readme_marks_these_examples():
    assert set(EXAMPLES) == {"whole-account", "big-folders", "flagged", "one-folder",
                             "Makefile"}


def test_whole_account(sample_account, tmp_path):
    run(EXAMPLES["whole-account"], sample_account, tmp_path)
    every = sample_mail.messages_per_folder()
    assert sum(map(messages_in, mbox_files(tmp_path / "backup")), Counter()) == +every
    again = run(EXAMPLES["whole-account"], sample_account, tmp_path)
    assert "APPEND" not in again.stderr


def test_big_folders(sample_account, tmp_path, program):
    program("jq")
    # The sample account has no folder of 1 GB: the same pipeline with 300 kB.
    script = EXAMPLES["big-folders"]
    assert "select(.value > 1e9)" in script
    run(script.replace("1e9", "3e5"), sample_account, tmp_path)
    size = Counter()
    for message in sample_mail.sample_messages():
        size[message.folder] += len(message.data)
    big = {folder for folder, total in size.items() if total > 3e5}
    assert 0 < len(big) < len(size)
    held = sum(map(messages_in, mbox_files(tmp_path / "backup")), Counter())
    assert set(held) == big


def test_flagged(sample_account, tmp_path, program):
    program("jq")
    run(EXAMPLES["flagged"], sample_account, tmp_path)
    flagged = Counter(m.folder for m in sample_mail.sample_messages() if "\\Flagged" in m.flags)
    assert messages_in(tmp_path / "flagged.mbox") == flagged


def test_one_folder(sample_account, tmp_path):
    run(EXAMPLES["one-folder"], sample_account, tmp_path)
    assert messages_in(tmp_path / "q3.mbox") == Counter({sample_mail.Q3: 47})


def test_makefile_backs_up_two_accounts_side_by_side(dovecot, tmp_path, program):
    make = program("make")
    passwords = tmp_path / "passwords"
    passwords.mkdir()
    users = []
    for layout, count in (("fs", 30), ("maildir++", 20)):
        user, password = dovecot.new_user(layout)
        with dovecot.client(user) as client:
            sample_mail.append_sample_mail(client, sample_mail.sample_messages()[:count])
        (passwords / user).write_text(password + "\n")
        (passwords / user).chmod(0o600)
        users.append(user)
    (tmp_path / "Makefile").write_text(EXAMPLES["Makefile"])
    env = command_env(dovecot, users[0], tmp_path)
    for key in ("IMAP_SERVER", "IMAP_USER", "IMAP_PASSWORD"):  # all from the Makefile
        del env[key]
    done = subprocess.run(
        [make, "-j2", f"SERVER={dovecot.host}:{dovecot.port}", f"ACCOUNTS={' '.join(users)}",
         f"PASSWORDS={passwords}"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    for user, count in zip(users, (30, 20), strict=True):
        backup = tmp_path / "backup" / user
        assert sum(map(messages_in, mbox_files(backup)), Counter()) == Counter({"INBOX": count})
