"""bin/imapbackup end to end, against a real Dovecot holding the sample mail."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sample_mail
from conftest import command_env

from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan
from imapstream.message import to_lf

REPO = Path(__file__).resolve().parent.parent
IMAPBACKUP = REPO / "bin" / "imapbackup"
ALL_FILES = {"INBOX.mbox", "Sent.mbox", "Drafts.mbox", "Archive.mbox", "Personal.mbox",
             "Personal.2005.mbox", "Personal.2005.Q3.mbox", "Entwürfe.mbox",
             'Projects & "Ideas" (2024).mbox'}  # Personal/2005 is empty: an empty file


def imapbackup(env, *args):
    return subprocess.run([str(IMAPBACKUP), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def held(directory):
    """{mbox file name: Counter of (folder, message in LF form, sorted flags)}."""
    return {os.path.basename(path): Counter((record["folder"], data,
                                             tuple(sorted(record["flags"])))
                                            for _offset, record, data in scan(path))
            for path in mbox_files(str(directory))}


def contents(directory):
    """{mbox file name: its bytes}, leaving out what else the plumbing keeps there."""
    return {os.path.basename(path): Path(path).read_bytes()
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


def read_until_exit(fd, pid, answers, deadline=60):
    """Drive a program on a pseudo-terminal: answer each prompt once; return
    (everything it wrote, exit status)."""
    output, pending, end = b"", list(answers), time.monotonic() + deadline
    while time.monotonic() < end:
        if pending and pending[0][0] in output:
            os.write(fd, pending.pop(0)[1])
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                break
            output += chunk
    _pid, status = os.waitpid(pid, 0)
    return output, os.waitstatus_to_exitcode(status)


def test_asks_for_the_password_on_the_terminal_without_echo(sample_account, tmp_path):
    env = dict(sample_account, IMAP_PASSWORD="")
    secret = sample_account["IMAP_PASSWORD"].encode()
    pid, fd = pty.fork()
    if pid == 0:  # the child: imapbackup with the pseudo-terminal as its terminal
        try:
            os.execve(str(IMAPBACKUP), ["imapbackup", "-d", str(tmp_path), "-f", "Drafts"],
                      env)
        finally:
            os._exit(127)
    output, status = read_until_exit(fd, pid, [(b"Password: ", secret + b"\n")])
    os.close(fd)
    assert status == 0, output
    assert output.startswith(b"Password: ")
    assert secret not in output
    assert b"APPEND: Appended 6 messages to Drafts.mbox" in output
    assert set(contents(tmp_path)) == {"Drafts.mbox"}


def test_a_password_option_warns_and_reaches_the_plumbing_by_environment(sample_account, tmp_path):
    # Shims record how each command was started, then run the real one.
    shim = tmp_path / "shim"
    shim.mkdir()
    for command in ("imap-list", "imap-fetch"):
        real = shutil.which(command, path=os.path.dirname(sys.executable))
        (shim / command).write_text(
            f'#!/bin/sh\necho "{command} $* password=$IMAP_PASSWORD" >> {tmp_path}/calls\n'
            f'exec {real} "$@"\n')
        (shim / command).chmod(0o755)
    secret = sample_account["IMAP_PASSWORD"]
    env = dict(sample_account, IMAP_PASSWORD="", PATH=f"{shim}{os.pathsep}{sample_account['PATH']}")
    done = imapbackup(env, "-d", tmp_path / "backup", "-f", "Drafts", "-p", secret)
    assert done.returncode == 0, done.stderr
    assert "warning: a password given with -p can be read by other users in ps" in done.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 2
    for call in calls:
        arguments, _, password = call.partition(" password=")
        assert secret not in arguments and password == secret


@pytest.mark.parametrize("args", [
    ["--no-such-option"], ["-j", "0"], ["--compress=lz4"], ["-f", "INBOX", "--include", "x"],
    ["--thunderbird", "-b"], ["extra-argument"]])
def test_usage_errors_exit_2(sample_account, tmp_path, args):
    done = imapbackup(sample_account, "-d", tmp_path, *args)
    assert done.returncode == 2
    assert done.stderr.startswith("imapbackup: ") and done.stderr.endswith("(see --help)\n")
    assert not any(tmp_path.iterdir())


def test_no_password_and_no_terminal_is_a_usage_error(sample_account, tmp_path):
    done = subprocess.run([str(IMAPBACKUP), "-d", str(tmp_path)],
                          env=dict(sample_account, IMAP_PASSWORD=""), capture_output=True,
                          text=True, start_new_session=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "no password" in done.stderr


def test_the_plumbing_statuses_pass_through(sample_account, tmp_path):
    """A run that a fatal error stopped before any folder says the cause alone."""
    refused = imapbackup(dict(sample_account, IMAP_PASSWORD="wrong"), "-d", tmp_path)
    assert refused.returncode == 77
    assert re.fullmatch(r"imap-list: login as [^\n]* failed: [^\n]*\n", refused.stderr)
    assert "wrong" not in refused.stderr
    for jobs in "1", "2":
        unreachable = imapbackup(dict(sample_account, IMAP_SERVER="127.0.0.1:1"), "-d",
                                 tmp_path, "-j", jobs, "--json")
        assert unreachable.returncode == 69
        assert re.fullmatch(r"imap-list: [^\n]*\n", unreachable.stderr), unreachable.stderr
        assert json.loads(unreachable.stdout)["status"] == 69


def test_an_interrupted_run_counts_the_folders_it_finished(sample_account, tmp_path):
    """^C once INBOX is in and while Sent is on its way: INBOX alone is backed up."""
    shim = tmp_path / "shim"
    shim.mkdir()
    real = shutil.which("imap-fetch", path=os.path.dirname(sys.executable))
    (shim / "imap-fetch").write_text(  # the records up to INBOX's checkpoint, then a wait
        f"#!/bin/sh\nsed '/^{{\"folder\":\"INBOX\".*\"checkpoint\"/q' | {real} \"$@\"\n"
        f"touch {tmp_path}/fetched\nexec sleep 60\n")
    (shim / "imap-fetch").chmod(0o755)
    env = dict(sample_account, PATH=f"{shim}{os.pathsep}{sample_account['PATH']}")
    run = subprocess.Popen([str(IMAPBACKUP), "-d", str(tmp_path / "backup"), "-f", "INBOX,Sent",
                            "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "fetched").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert re.search(r"^SUMMARY: 1 folder, 119 messages appended \(", err, re.M), err
    assert err.endswith("imapbackup: the backup is not complete (exit status 130)\n")
    assert json.loads(out) | {"bytes": 0, "largest": 0, "seconds": 0} == {
        "folders": 1, "files": 1, "messages": 119, "bytes": 0, "largest": 0, "failed": [],
        "seconds": 0, "status": 130}


def test_the_summary_comes_also_when_its_jq_ended_first(sample_account, tmp_path):
    """The summary's jq (a coprocess, tally) ignores the signals that stop a run, but
    one that came before it did ends it: killed here, then ^C once INBOX is in; the
    summary still counts INBOX (summary runs the jq itself)."""
    shim = tmp_path / "shim"
    shim.mkdir()
    real = shutil.which("imap-fetch", path=os.path.dirname(sys.executable))
    (shim / "imap-fetch").write_text(
        f"#!/bin/sh\nsed '/^{{\"folder\":\"INBOX\".*\"checkpoint\"/q' | {real} \"$@\"\n"
        f"touch {tmp_path}/fetched\nexec sleep 60\n")
    jq = shutil.which("jq")
    (shim / "jq").write_text(f"#!/bin/sh\necho $$ >>{tmp_path}/jq\nexec {jq} \"$@\"\n")
    for name in ("imap-fetch", "jq"):
        (shim / name).chmod(0o755)
    env = dict(sample_account, PATH=f"{shim}{os.pathsep}{sample_account['PATH']}")
    run = subprocess.Popen([str(IMAPBACKUP), "-d", str(tmp_path / "backup"), "-f", "INBOX,Sent"],
                           env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "fetched").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(int((tmp_path / "jq").read_text().split()[0]), signal.SIGKILL)
    os.killpg(run.pid, signal.SIGINT)
    _out, err = run.communicate(timeout=30)
    assert run.returncode == 130, err
    assert re.search(r"^SUMMARY: 1 folder, 119 messages appended \(", err, re.M), err


def test_an_interrupted_overwrite_keeps_the_old_files(sample_account, tmp_path):
    """^C reaches the whole process group, as on a terminal; here while imap-fetch runs."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "imap-fetch").write_text(f"#!/bin/sh\ntouch {tmp_path}/fetching\nexec sleep 60\n")
    (shim / "imap-fetch").chmod(0o755)
    old = b"From x Mon Jan  1 00:00:00 2001\n\nx\n\n"
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "Sent.mbox").write_bytes(old)
    env = dict(sample_account, PATH=f"{shim}{os.pathsep}{sample_account['PATH']}",
               TMPDIR=str(tmp_path))
    run = subprocess.Popen([str(IMAPBACKUP), "-y", "-d", str(tmp_path / "backup"), "-j", "2"],
                           env=env, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "fetching").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)
    assert run.wait(timeout=30) == 130, run.stderr.read()
    run.stderr.close()
    assert contents(tmp_path / "backup") == {"Sent.mbox": old}
    assert not list((tmp_path / "backup").glob(".imapbackup-new*"))
    assert not list(tmp_path.glob("imapbackup.*"))


def test_help_and_man_page_show_the_same_options(sample_account):
    done = imapbackup(sample_account, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: imapbackup [OPTIONS]")
    in_help = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", done.stdout))
    page = (REPO / "man" / "imapbackup.1").read_text().splitlines()
    in_page = {"-" + flag for line in page if line.startswith(".It ")
               for flag in re.findall(r"\bFl (-?[\w-]+)", line)}
    assert in_help == in_page


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


def test_the_login_comes_from_where_the_plumbing_finds_it(sample_account, tmp_path):
    """imap-list --login-source tells imapbackup whether to ask: not for ~/.netrc."""
    home = tmp_path / "home"
    home.mkdir()
    env = dict(sample_account, HOME=str(home), IMAP_PASSWORD="")
    del env["IMAP_USER"]

    def source(*args):
        done = subprocess.run(["imap-list", "--login-source", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, done.stdout or done.stderr

    assert source() == (2, "imap-list: no user: give -u USER or set IMAP_USER\n")
    assert source("-u", "x") == (0, '{"user":"x","secret":"terminal"}\n')
    assert source("-u", "x", "--password-command", "true") == (
        0, '{"user":"x","secret":"command"}\n')
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {sample_account['IMAP_USER']} password "
                     f"{sample_account['IMAP_PASSWORD']}\n")
    netrc.chmod(0o600)
    assert source() == (0, f'{{"user":"{sample_account["IMAP_USER"]}","secret":"netrc"}}\n')
    done = subprocess.run([str(IMAPBACKUP), "-d", str(tmp_path / "backup"), "-f", "Drafts"],
                          env=env, capture_output=True, text=True, start_new_session=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert set(contents(tmp_path / "backup")) == {"Drafts.mbox"}


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
