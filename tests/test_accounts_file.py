"""The accounts file as imapstream(7) gives it, the imapbackup options an account becomes,
the host each account goes to, and the systemd units --systemd writes."""

from __future__ import annotations

import random

import pytest

from imapstream import systemd_units
from imapstream.accounts import (
    Account,
    BadLine,
    host_for,
    imapbackup_argv,
    login_key,
    parse_account,
    read_accounts,
)
from imapstream.errors import DataError

GOOD = b'{"name":"alice","server":"Imap.Example.org:993","user":"alice@example.org"'


@pytest.mark.parametrize("line, problem", [
    (b'["alice"]', "not a JSON object"),
    (b'{"name":', "not a JSON object"),
    (b'{"server":"x","user":"y"}', '"name" must be letters, digits and . _ @ + - (at most '
     "128, the first a letter or digit)"),
    (b'{"name":".hidden","server":"x","user":"y"}', '"name" must be letters, digits and '
     ". _ @ + - (at most 128, the first a letter or digit)"),
    (b'{"name":"a/b","server":"x","user":"y"}', '"name" must be letters, digits and '
     ". _ @ + - (at most 128, the first a letter or digit)"),
    (GOOD + b',"password":"s3cret"}', '"password" is not accepted: the file would hold it; '
     'give "password_file", "password_command" or "oauth2_token_command"'),
    (GOOD + b',"pasword_file":"f"}', 'unknown field "pasword_file"'),
    (GOOD + b',"tls":"ssl"}', '"tls" must be one of imaps, starttls, none'),
    (GOOD + b',"compress":"zip"}', '"compress" must be one of gzip, bzip2, xz, none'),
    (GOOD + b',"timeout":0}', '"timeout" must be a whole number from 1 up'),
    (GOOD + b',"jobs":true}', '"jobs" must be a whole number from 1 up'),
    (GOOD + b',"insecure":"yes"}', '"insecure" must be true or false'),
    (GOOD + b',"folders":"INBOX"}', '"folders" must be an array of strings'),
    (GOOD + b',"cafile":7}', '"cafile" must be a string'),
    (b'{"name":"alice","server":"x"}', '"user" is missing'),
    (GOOD + b',"password_file":"f","password_command":"c"}',
     "give at most one of password_file, password_command, oauth2_token_command"),
    (GOOD + b',"dir":""}', '"dir" must be a directory name'),
])
def test_a_bad_line_says_what_is_wrong_and_shows_no_value(line, problem):
    with pytest.raises(DataError) as raised:
        parse_account(line)
    assert str(raised.value) == problem
    assert "s3cret" not in problem


def test_each_bad_line_fails_alone_and_a_name_counts_once():
    lines = [b"# comment", b"", GOOD + b"}", b'{"name":"bob","server":1,"user":"b"}',
             b'{"name":"alice","server":"x","user":"y"}', b"{", b'{"name":"carol","s":1}']
    assert list(read_accounts(lines)) == [
        Account({"name": "alice", "server": "Imap.Example.org:993",
                 "user": "alice@example.org"}),
        BadLine(4, "bob", '"server" must be a string'),
        BadLine(5, None, 'the name "alice" is given twice'),
        BadLine(6, None, "not a JSON object"),
        BadLine(7, "carol", 'unknown field "s"')]


def test_an_account_becomes_imapbackup_options():
    account = parse_account(
        GOOD + b',"password_command":"pass show alice","tls":"starttls","timeout":30,'
        b'"insecure":true,"thunderbird":false,"folders":["INBOX","Receipts, 2024","a\\\\b"],'
        b'"exclude":["^Trash"],"compress":"xz","dir":"staff/alice"}')
    assert account.server == "imap.example.org:993" and account.dir == "staff/alice"
    assert imapbackup_argv(account, "/srv/mail/staff/alice") == [
        "--server", "Imap.Example.org:993", "--user", "alice@example.org",
        "--password-command", "pass show alice", "--tls", "starttls", "--timeout", "30",
        "--insecure", "--folders", "INBOX", "--folders", "Receipts\\, 2024",
        "--folders", "a\\\\b", "--exclude", "^Trash", "--compress", "xz",
        "--mbox-dir", "/srv/mail/staff/alice", "--nospinner", "--json"]
    # "@" as \u0040: GNU parallel and ssh take no account line apart at "@".
    assert account.line() == (
        '{"name":"alice","server":"Imap.Example.org:993","user":"alice\\u0040example.org",'
        '"password_command":"pass show alice","tls":"starttls","timeout":30,"insecure":true,'
        '"thunderbird":false,"folders":["INBOX","Receipts, 2024","a\\\\b"],'
        '"exclude":["^Trash"],"compress":"xz","dir":"staff/alice"}')
    assert parse_account(account.line().encode()) == account


def test_each_account_keeps_its_host_and_a_new_host_takes_only_its_share():
    seed = random.randrange(1 << 30)
    print("seed", seed)
    names = [f"user{random.Random(seed + n).randrange(10**6)}" for n in range(300)]
    three = ["4/backup1", "backup2", "root@backup3"]
    placed = {name: host_for(name, three) for name in names}
    # The order of the hosts and their job counts do not matter.
    other = ["root@backup3", "backup2", "8/backup1"]
    assert {name: login_key(host_for(name, other)) for name in names} == {
        name: login_key(host) for name, host in placed.items()}
    four = {name: host_for(name, [*three, "backup4"]) for name in names}
    moved = {name for name in names if four[name] != placed[name]}
    assert all(four[name] == "backup4" for name in moved)
    assert 0.1 < len(moved) / len(names) < 0.4
    assert set(placed.values()) == set(three)
    # Pinned: the same account on the same host in every version.
    assert [host_for(name, ["hostA", "hostB"]) for name in ("alice", "bob", "carol")] == [
        "hostB", "hostB", "hostA"]


def test_the_systemd_units_run_the_same_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    systemd_units.write("units", ["--accounts", "accounts", "-j", "4", "--systemd", "units",
                                  "-S", "b1,b2", "--json"], "/opt/ims/bin/imapbackup")
    service = (tmp_path / "units" / "imapbackup-accounts.service").read_text()
    assert f"ExecStart=/opt/ims/bin/imapbackup --accounts {tmp_path}/accounts -j 4 -S b1,b2 " \
           f"--json -d {tmp_path}\n" in service
    assert "Type=oneshot\n" in service
    timer = (tmp_path / "units" / "imapbackup-accounts.timer").read_text()
    assert "OnCalendar=*-*-* 02:30:00\n" in timer and "WantedBy=timers.target\n" in timer
    assert systemd_units.quote("pass show 100%") == '"pass show 100%%"'
    assert systemd_units.quote('a"b$HOME') == '"a\\"b$$HOME"'
