"""imapbackup --accounts FILE on this machine, against Dovecot: each account fails alone
(a wrong password, a server refusing connections, a bad line), Ctrl-C lets the running
accounts finish and --resume does only the rest, the per-server slots and the account
lock hold."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import time

import orjson
import pytest
from accounts_helpers import (
    REPO,
    account_line,
    accounts_file,
    assert_backed_up,
    environment,
    imapbackup,
    mail_user,
    records,
)
from dovecot import free_port

pytestmark = pytest.mark.usefixtures("parallel_installed")


@pytest.fixture
def parallel_installed(program):
    program("parallel")


def test_each_account_fails_alone_with_one_line(dovecot, tmp_path):
    alice, bob, carol = (mail_user(dovecot) for _ in range(3))
    root = tmp_path / "backup"
    lines = [account_line(dovecot, tmp_path, "alice", *alice),
             {**account_line(dovecot, tmp_path, "bob", *bob), "password_file": None},
             account_line(dovecot, tmp_path, "carol", carol[0], "wrong-password"),
             {**account_line(dovecot, tmp_path, "dave", *alice),
              "server": f"127.0.0.1:{free_port()}"},
             '{"name":"eve","server":"x","user":"y","pasword_file":"z"}',
             '{"name":"frank","server":"x","user":"y","password":"hunter2"}',
             '{"name":']
    bob_password = tmp_path / "bob.password"
    del lines[1]["password_file"]
    lines[1]["password_command"] = f"cat {bob_password}"
    done = imapbackup("--accounts", accounts_file(tmp_path / "accounts", lines), "-j", "2",
                      "-d", root, "--json")
    by_account, closing = records(done.stdout)
    assert {name: r["status"] for name, r in by_account.items()} == {
        "alice": 0, "bob": 0, "carol": 77, "dave": 69, "eve": 65, "frank": 65, "line 7": 65}
    assert by_account["alice"]["messages"] == by_account["bob"]["messages"] == 4
    assert by_account["alice"]["folders"] == 2 and by_account["alice"]["failed"] == []
    assert closing == {**closing, "accounts": 7, "succeeded": 2, "resumed": 0, "messages": 8,
                       "failed": ["carol", "dave", "eve", "frank", "line 7"], "status": 1}
    assert done.returncode == 1
    accounts = tmp_path / "accounts"
    failures = [line for line in done.stderr.splitlines() if not line.startswith("SUMMARY")]
    assert sorted(failures) == sorted([
        "imapbackup: account carol: imap-list: login as "
        f"{carol[0]} on 127.0.0.1 failed: [AUTHENTICATIONFAILED] Authentication failed. "
        "(exit status 77)",
        f"imapbackup: account dave: imap-list: 127.0.0.1 port {lines[3]['server'][10:]} "
        "refused the connection (IMAPS is usually port 993, STARTTLS 143) (exit status 69)",
        f'imapbackup: account eve: {accounts}:5: unknown field "pasword_file" (exit status 65)',
        f'imapbackup: account frank: {accounts}:6: "password" is not accepted: the file would '
        'hold it; give "password_file", "password_command" or "oauth2_token_command" '
        "(exit status 65)",
        f"imapbackup: account line 7: {accounts}:7: not a JSON object (exit status 65)"])
    assert_backed_up(dovecot, alice[0], root / "alice")
    assert_backed_up(dovecot, bob[0], root / "bob")
    for name in ("alice", "carol", "dave"):
        assert (root / name).stat().st_mode & 0o777 == 0o700
        log = root / name / "imapbackup.log"
        assert log.stat().st_mode & 0o777 == 0o600
        assert orjson.loads(log.read_bytes().splitlines()[-1]) == by_account[name]
    # No password in what the run wrote or the command lines of its jobs (the joblog).
    state = root / ".imapbackup-accounts"
    written = [done.stdout, done.stderr] + [
        path.read_text() for path in [*root.glob("*/imapbackup.log"), state / "joblog",
                                      state / "summary.ndjson"]]
    for password in (alice[1], bob[1], carol[1], "wrong-password", "hunter2",
                     "not-this-one"):
        assert not any(password in text for text in written)
    assert (state / "summary.ndjson").read_bytes() == done.stdout.encode()


def test_ctrl_c_lets_running_accounts_finish_and_resume_does_the_rest(dovecot, tmp_path):
    users = {f"a{n}": mail_user(dovecot) for n in range(3)}
    file = accounts_file(tmp_path / "accounts", [
        account_line(dovecot, tmp_path, name, *user) for name, user in users.items()])
    root = tmp_path / "backup"
    command = [str(REPO / "bin" / "imapbackup"), "--accounts", str(file), "-d", str(root),
               "--json"]
    # A terminal's Ctrl-C: SIGINT to the foreground process group, the run's.
    run = subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, start_new_session=True)
    first = orjson.loads(run.stdout.readline())
    os.killpg(run.pid, signal.SIGINT)
    rest, errors = run.communicate(timeout=120)
    by_account, closing = records(rest)
    by_account[first["account"]] = first
    assert run.returncode == 130 and closing["status"] == 130
    done = {name for name, r in by_account.items() if r["status"] == 0}
    assert first["account"] in done and len(done) < 3
    for name in set(users) - done:
        assert by_account[name] == {**by_account[name], "status": 130,
                                    "error": "not finished: the run was stopped"}
    assert errors.decode().endswith(f"SUMMARY: 3 accounts, {len(done)} backed up, "
                                    f"{3 - len(done)} failed: "
                                    f"{', '.join(sorted(set(users) - done))}; "
                                    f"{4 * len(done)} messages appended "
                                    f"({closing['bytes']} bytes) in {closing['seconds']} s\n")
    again = imapbackup("--accounts", file, "-d", root, "--json", "--resume")
    resumed, closing = records(again.stdout)
    assert set(resumed) == set(users) - done
    assert closing == {**closing, "accounts": 3, "succeeded": 3, "resumed": len(done),
                       "failed": [], "status": 0}
    assert again.returncode == 0
    for name, (user, _password) in users.items():
        assert_backed_up(dovecot, user, root / name)


def test_at_most_max_per_server_accounts_of_a_server_at_once(dovecot, tmp_path):
    user = mail_user(dovecot)
    file = accounts_file(tmp_path / "accounts", [account_line(dovecot, tmp_path, "a", *user)])
    root = tmp_path / "backup"
    slots = root / ".imapbackup-accounts" / "slots"
    slots.mkdir(parents=True)
    held = os.open(slots / f"127.0.0.1_{dovecot.port}.0", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(held, fcntl.LOCK_EX)
    run = subprocess.Popen([str(REPO / "bin" / "imapbackup"), "--accounts", str(file), "-d",
                            str(root), "--max-per-server", "1", "--json"],
                           env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = root / "a" / "imapbackup.log"
    waiting = f"imapbackup: waiting for one of the 1 slots of 127.0.0.1:{dovecot.port}\n"
    end = time.monotonic() + 60
    while time.monotonic() < end and not (log.exists() and log.read_text() == waiting):
        time.sleep(0.05)
    assert log.read_text() == waiting
    assert sorted(p.name for p in (root / "a").iterdir()) == [".imapbackup.lock",
                                                              "imapbackup.log"]
    os.close(held)
    out, _errors = run.communicate(timeout=120)
    assert run.returncode == 0 and records(out.decode())[0]["a"]["messages"] == 4
    assert_backed_up(dovecot, user[0], root / "a")


def test_an_account_another_run_holds_waits_for_a_later_run(dovecot, tmp_path):
    user = mail_user(dovecot, messages=0)
    file = accounts_file(tmp_path / "accounts", [account_line(dovecot, tmp_path, "a", *user)])
    (tmp_path / "backup" / "a").mkdir(parents=True)
    held = os.open(tmp_path / "backup" / "a" / ".imapbackup.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)
    done = imapbackup("--accounts", file, "-d", tmp_path / "backup", "--json")
    os.close(held)
    assert done.returncode == 75
    assert records(done.stdout)[0]["a"]["error"] == (
        f"{tmp_path}/backup/a: another run is backing up this account")


def test_a_second_ctrl_c_stops_the_running_accounts_cleanly(dovecot, tmp_path):
    users = {f"b{n}": mail_user(dovecot, messages=40) for n in range(2)}
    file = accounts_file(tmp_path / "accounts", [
        account_line(dovecot, tmp_path, name, *user) for name, user in users.items()])
    root = tmp_path / "backup"
    run = subprocess.Popen([str(REPO / "bin" / "imapbackup"), "--accounts", str(file), "-j",
                            "2", "-d", str(root), "--json"], env=environment(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           start_new_session=True)
    end = time.monotonic() + 60
    while time.monotonic() < end and not all(
            (root / name / "imapbackup.log").exists() for name in users):
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGINT)
    # parallel says when it has the first signal (SIGHUP: no new jobs); then the second.
    first = run.stderr.readline().decode()
    assert first == "parallel: SIGHUP received. No new jobs will be started.\n"
    os.killpg(run.pid, signal.SIGINT)
    out, _errors = run.communicate(timeout=120)
    assert run.returncode == 130
    by_account, closing = records(out.decode())
    assert closing["status"] == 130 and set(by_account) <= set(users)
    stopped = {name for name in users if name not in by_account
               or by_account[name]["status"] != 0}
    assert stopped
    # Each stopped account's imapbackup ends on its own: its lock is free once it has.
    for name in stopped:
        lock = os.open(root / name / ".imapbackup.lock", os.O_RDWR)
        end = time.monotonic() + 60
        while not _locked(lock) and time.monotonic() < end:
            time.sleep(0.05)
        os.close(lock)
    again = imapbackup("--accounts", file, "-d", root, "--json", "--resume")
    assert again.returncode == 0, again.stderr
    assert set(records(again.stdout)[0]) == stopped
    for name, (user, _password) in users.items():
        assert_backed_up(dovecot, user, root / name)


def _locked(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
