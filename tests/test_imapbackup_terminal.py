"""bin/imapbackup at the terminal and in the shell: the password asked without echo or
passed on by environment, usage errors, the plumbing's exit statuses, an interrupted run
and its summary, --help against the man page, and the login the plumbing finds."""

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

import pytest
from porcelain import IMAPBACKUP, REPO, contents, imapbackup


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
