"""bin/imapbackup end to end, against a real Dovecot holding the sample mail."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter

import pytest
import sample_mail
from conftest import command_env
from porcelain import contents, imapbackup

from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan
from imapstream.message import to_lf

ALL_FILES = {"INBOX.mbox", "Sent.mbox", "Drafts.mbox", "Archive.mbox", "Personal.mbox",
             "Personal.2005.mbox", "Personal.2005.Q3.mbox", "Entwürfe.mbox",
             'Projects & "Ideas" (2024).mbox'}  # Personal/2005 is empty: an empty file


def held(directory):
    """{mbox file name: Counter of (folder, message in LF form, sorted flags)}."""
    return {os.path.basename(path): Counter((record["folder"], data,
                                             tuple(sorted(record["flags"])))
                                            for _offset, record, data in scan(path))
            for path in mbox_files(str(directory))}


@pytest.fixture(scope="module")
def plain_backup(sample_account, tmp_path_factory):
    """A complete backup made by one plain run, and that run."""
    directory = tmp_path_factory.mktemp("plain")
    done = imapbackup(sample_account, "-d", directory)
    return directory, done


def test_a_full_run_keeps_every_message_with_its_flags(plain_backup):
    directory, done = plain_backup
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    expected = Counter()
    for message in sample_mail.sample_messages():
        expected[message.folder, to_lf(message.data), tuple(sorted(message.flags))] += 1
    assert sum(held(directory).values(), Counter()) == expected
    assert set(contents(directory)) == ALL_FILES
    assert "IMAP: Found 47 messages in Personal/2005/Q3\n" in done.stderr
    assert "IMAP: Found 0 messages in Personal/2005\n" in done.stderr
    assert "APPEND: Appended 47 messages to Personal.2005.Q3.mbox (" in done.stderr
    assert "SUMMARY: 9 folders, 305 messages appended (" in done.stderr


def test_a_second_run_appends_nothing(sample_account, tmp_path):
    assert imapbackup(sample_account, "-d", tmp_path).returncode == 0
    before = contents(tmp_path)
    done = imapbackup(sample_account, "-d", tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary | {"seconds": 0} == {"folders": 9, "files": 0, "messages": 0, "bytes": 0,
                                        "largest": 0, "failed": [], "seconds": 0, "status": 0}
    assert "APPEND" not in done.stderr
    assert contents(tmp_path) == before
    # The backup's checkpoints let imap-list skip every folder after a STATUS.
    assert "IMAP: Found 0 new messages in INBOX\n" in done.stderr
    assert "IMAP: Found 0 new messages in Personal/2005/Q3\n" in done.stderr


def test_new_mail_is_listed_alone_and_yes_overwrite_keeps_the_checkpoints(
        dovecot, tmp_path):
    user, _password = dovecot.new_user("fs")
    with dovecot.client(user) as client:
        sample_mail.append_sample_mail(client)
    env = command_env(dovecot, user, tmp_path)
    backup = tmp_path / "backup"
    assert imapbackup(env, "-d", backup, "-y").returncode == 0
    listed = subprocess.run(["mbox-ids", "--folders", "-d", str(backup)], env=env,
                            capture_output=True, check=True).stdout
    assert len(listed.splitlines()) == len(ALL_FILES)  # the sidecars came along
    with dovecot.client(user) as client:
        client.append("INBOX", b"Subject: new\r\n\r\nnew\r\n")
    done = imapbackup(env, "-d", backup, "-j", "2")
    assert done.returncode == 0, done.stderr
    assert "IMAP: Found 1 new message in INBOX\n" in done.stderr
    assert "SUMMARY: 9 folders, 1 message appended (" in done.stderr
    with dovecot.client(user) as client:
        client.append("INBOX", b"Subject: 1\r\n\r\n1\r\n")
    one = imapbackup(env, "-d", backup, "-f", "INBOX")
    assert re.search(r"^SUMMARY: 1 folder, 1 message appended \(\d+ bytes\) in [\d.]+ s$",
                     one.stderr, re.M)


@pytest.mark.parametrize(("option", "suffix", "reader"), [
    ("-z", ".gz", "zcat"), ("-b", ".bz2", "bzcat"), ("--compress=xz", ".xz", "xzcat")])
def test_compressed_files_hold_the_same_messages(sample_account, plain_backup, tmp_path, program,
                                                 option, suffix, reader):
    plain, _done = plain_backup
    reader = program(reader)
    assert imapbackup(sample_account, "-d", tmp_path, option).returncode == 0
    assert set(contents(tmp_path)) == {name + suffix for name in ALL_FILES}
    for name in ALL_FILES:
        unpacked = subprocess.run([reader, str(tmp_path / (name + suffix))],
                                  capture_output=True, check=True).stdout
        assert unpacked == (plain / name).read_bytes(), name
    again = imapbackup(sample_account, "-d", tmp_path, option, "--json")
    assert json.loads(again.stdout)["messages"] == 0


def test_folders_are_chosen_by_exact_name(sample_account, plain_backup, tmp_path):
    plain, _done = plain_backup
    chosen = imapbackup(sample_account, "-d", tmp_path / "f", "-f",
                        f"{sample_mail.Q3},{sample_mail.PUNCTUATED}")
    assert chosen.returncode == 0, chosen.stderr
    assert contents(tmp_path / "f") == {
        name: (plain / name).read_bytes()
        for name in ("Personal.2005.Q3.mbox", 'Projects & "Ideas" (2024).mbox')}
    # Exact: "Personal" does not take Personal/2005/Q3 along, "(" is no regex group.
    excluded = imapbackup(sample_account, "-d", tmp_path / "x", "--exclude-folders",
                          f"INBOX,Personal,{sample_mail.PUNCTUATED}")
    assert excluded.returncode == 0, excluded.stderr
    assert set(contents(tmp_path / "x")) == ALL_FILES - {
        "INBOX.mbox", "Personal.mbox", 'Projects & "Ideas" (2024).mbox'}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_missing_folder_fails_and_the_others_are_backed_up(sample_account, plain_backup,
                                                             tmp_path, jobs):
    plain, _done = plain_backup
    done = imapbackup(sample_account, "-d", tmp_path, "-j", jobs, "-f", "INBOX,No such folder,Sent")
    assert done.returncode == 1
    assert "No such folder" in done.stderr
    assert "some folders failed" in done.stderr
    assert contents(tmp_path) == {name: (plain / name).read_bytes()
                                  for name in ("INBOX.mbox", "Sent.mbox")}


def test_a_folder_deleted_before_its_fetch_fails_alone(dovecot, tmp_path):
    user, _password = dovecot.new_user("fs")
    every = sample_mail.sample_messages()
    some = {folder: [m for m in every if m.folder == folder][:count]
            for folder, count in (("INBOX", 20), ("Sent", 10), ("Archive", 5))}
    with dovecot.client(user) as client:
        sample_mail.append_sample_mail(client, sum(some.values(), []))
    # An imap-fetch that waits for all its records, then deletes Sent on the server:
    # Sent was listed, and is gone when its messages are fetched.
    shim = tmp_path / "shim"
    shim.mkdir()
    real = shutil.which("imap-fetch", path=os.path.dirname(sys.executable))
    (shim / "imap-fetch").write_text(
        f"#!/bin/sh\ncat >{tmp_path}/records\n"
        f"{dovecot.doveadm_binary} -c {dovecot.conf} mailbox delete -u {user} Sent\n"
        f'exec {real} "$@" <{tmp_path}/records\n')
    (shim / "imap-fetch").chmod(0o755)
    env = command_env(dovecot, user, tmp_path)
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    done = imapbackup(env, "-d", tmp_path / "backup", "--json")
    assert done.returncode == 1
    assert "imap-fetch: Sent: " in done.stderr
    # Sent is counted as failed, not backed up: 8 of the 9 folders listed.
    assert re.search(r"^SUMMARY: 8 folders, 25 messages appended \(", done.stderr, re.M)
    assert done.stderr.endswith(
        "imapbackup: 1 folder failed: Sent; the others were backed up (exit status 1)\n")
    assert json.loads(done.stdout) | {"bytes": 0, "largest": 0, "seconds": 0} == {
        "folders": 8, "files": 2, "messages": 25, "bytes": 0, "largest": 0,
        "failed": ["Sent"], "seconds": 0, "status": 1}
    assert "IMAP: Found 10 messages in Sent" in done.stderr
    assert {name: sum(messages.values())
            for name, messages in held(tmp_path / "backup").items()} == {
        "INBOX.mbox": 20, "Archive.mbox": 5,
        **{name: 0 for name in ALL_FILES - {"INBOX.mbox", "Archive.mbox", "Sent.mbox"}}}


def test_parallel_pipelines_make_the_same_backup(sample_account, plain_backup, tmp_path):
    plain, _done = plain_backup
    done = imapbackup(sample_account, "-d", tmp_path, "-j", "3", "-v", "--json")
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r"^imapbackup: pipeline \d: imap-list", done.stderr, re.M)) == 3
    assert contents(tmp_path) == contents(plain)
    assert json.loads(done.stdout)["messages"] == 305


def test_thunderbird_layout(sample_account, plain_backup, tmp_path):
    plain, _done = plain_backup
    assert imapbackup(sample_account, "-d", tmp_path, "--thunderbird").returncode == 0
    tree = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
            if ".flat" not in p.parts and p.is_file()}
    # '"' is among the characters Thunderbird keeps out of file names: it cuts the name
    # there and adds a hash (tests/test_thunderbird.py).
    assert tree == {"INBOX", "Sent", "Drafts", "Archive", "Personal", "Personal.sbd/2005",
                    "Personal.sbd/2005.sbd/Q3", "Entwürfe", "Projects & f073a0be"}
    q3 = tmp_path / "Personal.sbd" / "2005.sbd" / "Q3"
    assert q3.read_bytes() == (plain / "Personal.2005.Q3.mbox").read_bytes()
    assert (tmp_path / "Personal.sbd" / "2005").stat().st_size == 0  # empty, a parent
    again = imapbackup(sample_account, "-d", tmp_path, "--thunderbird", "--json")
    assert json.loads(again.stdout)["messages"] == 0
    assert q3.stat().st_ino == (tmp_path / ".flat" / "Personal.2005.Q3.mbox").stat().st_ino


def test_overwrite_replaces_old_files_only_once_the_copy_is_complete(sample_account, plain_backup,
                                                                     tmp_path):
    plain, _done = plain_backup
    old = {"Drafts.mbox": b"From x Mon Jan  1 00:00:00 2001\nSubject: old\n\nold\n\n",
           "Sent.mbox.gz": subprocess.run(["gzip"], input=(plain / "Sent.mbox").read_bytes(),
                                          capture_output=True, check=True).stdout,
           "INBOX.mbox": b"From x Mon Jan  1 00:00:00 2001\nSubject: keep me\n\nx\n\n"}
    for name, data in old.items():
        (tmp_path / name).write_bytes(data)
    failed = imapbackup(sample_account, "-d", tmp_path, "-y", "-f", "Drafts,Sent,Missing")
    assert failed.returncode == 1
    assert "the old mbox files stay as they were" in failed.stderr
    assert contents(tmp_path) == old
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".imapbackup-new")]
    done = imapbackup(sample_account, "-d", tmp_path, "-y", "-f", "Drafts,Sent")
    assert done.returncode == 0, done.stderr
    assert contents(tmp_path) == {"Drafts.mbox": (plain / "Drafts.mbox").read_bytes(),
                                  "Sent.mbox": (plain / "Sent.mbox").read_bytes(),
                                  "INBOX.mbox": old["INBOX.mbox"]}


def test_thunderbird_names_are_the_folder_names(dovecot, tmp_path):
    user, _ = dovecot.new_user("fs")
    with dovecot.client(user) as client:
        for folder in ("a.b", "100% done", "x/y.z", "x/y.z/w"):
            client.create_folder(folder)
            client.append(folder, b"Subject: %s\r\n\r\nbody\r\n" % folder.encode())
    env = command_env(dovecot, user, tmp_path)
    backup = tmp_path / "backup"
    done = imapbackup(env, "-d", backup, "--thunderbird", "--json")
    assert done.returncode == 0, done.stderr
    tree = {str(p.relative_to(backup)) for p in backup.rglob("*")
            if ".flat" not in p.parts and p.is_file()}
    assert tree == {"INBOX", "a.b", "100% done", "x", "x.sbd/y.z", "x.sbd/y.z.sbd/w"}
    assert (backup / "x").stat().st_size == 0
    assert (backup / "x.sbd" / "y.z").stat().st_ino == (
        backup / ".flat" / "x.y%2Ez.mbox").stat().st_ino
    assert (backup / "INBOX").stat().st_size == 0  # empty: its file holds its checkpoint
    assert json.loads(done.stdout)["files"] == 4  # the files appended to


def test_thunderbird_shows_folder_names_as_they_are(dovecot, new_user, tmp_path):
    """The flat files escape '.' and '%' (imapstream(7), Backup directory); Thunderbird's
    tree names a folder as it is, parts by .sbd directories."""
    user, _ = new_user("fs")
    client = dovecot.client(user)
    for folder in ("a.b", "Lists/100% done", "Lists/x.y/z"):
        client.create_folder(folder)
        client.append(folder, b"Subject: %s\r\n\r\nx\r\n" % folder.encode())
    done = imapbackup(command_env(dovecot, user), "-d", tmp_path, "--thunderbird")
    assert done.returncode == 0, done.stderr
    tree = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")
            if ".flat" not in p.parts and p.is_file()}
    assert tree == {"INBOX", "a.b", "Lists", "Lists.sbd/100% done", "Lists.sbd/x.y",
                    "Lists.sbd/x.y.sbd/z"}
    assert (tmp_path / "Lists.sbd" / "100% done").read_bytes() == (
        tmp_path / ".flat" / "Lists.100%25 done.mbox").read_bytes()
