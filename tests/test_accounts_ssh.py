"""imapbackup --accounts FILE -S HOST -S HOST: two real sshd hosts on 127.0.0.1, each
with a backup root of its own; every account always runs on the host its name hashes
to, whatever the order of the hosts, and its record comes back over ssh."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import pytest
import sshd
from accounts_helpers import (
    account_line,
    accounts_file,
    assert_backed_up,
    environment,
    imapbackup,
    mail_user,
    records,
)
from conftest import _unavailable

from imapstream.accounts import host_for

HOSTS = ["hostA", "hostB"]
# Names whose hosts differ (host_for), so that both hosts back up accounts.
NAMES = ["alice", "carol"]


@pytest.fixture(scope="module")
def hosts():
    if shutil.which("parallel") is None:
        _unavailable("parallel is not installed (apt-get install parallel)")
    if not sshd.available():
        _unavailable("sshd, ssh or ssh-keygen not installed (apt-get install "
                     "openssh-server openssh-client)")
    directory = tempfile.mkdtemp(prefix="imapstream-sshd-")
    try:
        started = sshd.SshHosts(directory, HOSTS, os.path.dirname(sys.executable)).start()
        yield started
        started.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_each_account_runs_on_its_host_and_reports_over_ssh(dovecot, hosts, tmp_path):
    assert {host_for(name, HOSTS) for name in NAMES} == set(HOSTS)
    users = {name: mail_user(dovecot) for name in NAMES}
    file = accounts_file(tmp_path / "accounts", [
        account_line(dovecot, tmp_path, name, *user) for name, user in users.items()])
    env = environment(PARALLEL_SSH=hosts.ssh_command)
    done = imapbackup("--accounts", file, "-S", ",".join(HOSTS), "-j", "2", "-d", "backup",
                      "--json", env=env, cwd=tmp_path)
    by_account, closing = records(done.stdout)
    assert done.returncode == 0, done.stderr
    assert closing == {**closing, "accounts": 2, "succeeded": 2, "messages": 8, "status": 0}
    for name, (user, _password) in users.items():
        host = host_for(name, HOSTS)
        other = HOSTS[1 - HOSTS.index(host)]
        assert by_account[name] == {**by_account[name], "host": host, "messages": 4}
        assert_backed_up(dovecot, user, hosts.root(host) / "backup" / name)
        assert not (hosts.root(other) / "backup" / name).exists()
    assert not (tmp_path / "backup" / NAMES[0]).exists()  # the controller holds no mail
    # The hosts in the other order, one of them from a file: each account on its host
    # again, so nothing is new.
    (tmp_path / "hosts").write_text(f"# the backup hosts\n{HOSTS[0]}\n")
    again = imapbackup("--accounts", file, "--slf", tmp_path / "hosts", "-S", HOSTS[1],
                       "-d", "backup", "--json", env=env, cwd=tmp_path)
    by_account, closing = records(again.stdout)
    assert again.returncode == 0, again.stderr
    assert {name: (r["host"], r["messages"]) for name, r in by_account.items()} == {
        name: (host_for(name, HOSTS), 0) for name in NAMES}
    joblogs = sorted(p.name for p in (tmp_path / "backup" / ".imapbackup-accounts").iterdir())
    assert joblogs == ["joblog.hostA", "joblog.hostB", "summary.ndjson"]
