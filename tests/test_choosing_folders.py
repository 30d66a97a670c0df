"""Choosing folders by name: INBOX in any case, and a name that matches no folder (a
typo) reported in the tool's words with the closest names the server lists."""

import json
import subprocess

import pytest
from conftest import command_env

Q3 = "Personal/2005/Q3"


@pytest.fixture(scope="module")
def account(dovecot, tmp_path_factory):
    """A user with the folders of the sample mail's names, a message in INBOX and Q3."""
    user, _password = dovecot.new_user("fs")
    with dovecot.client(user) as client:
        for folder in ("Sent", "Personal", "Personal/2005", Q3):
            client.create_folder(folder)
        for folder in ("INBOX", Q3):
            client.append(folder, f"Subject: in {folder}\r\n\r\nbody\r\n".encode())
    return command_env(dovecot, user, tmp_path_factory.mktemp("home"))


def imap_list(env, *argv):
    return subprocess.run(["imap-list", *argv], env=env, capture_output=True, text=True,
                          timeout=60)


def test_inbox_in_any_case_is_the_servers_inbox(account):
    for spelling in ("Inbox", "inbox", "INBOX"):
        done = imap_list(account, spelling)
        assert done.returncode == 0, done.stderr
        folders = {json.loads(line)["folder"] for line in done.stdout.splitlines()}
        assert folders == {"INBOX"}


def test_a_named_folder_the_server_lacks_fails_with_the_closest_names(account):
    done = imap_list(account, "Persnal/2005/Q3", Q3)
    assert done.returncode == 1  # the other folder is listed whole
    assert done.stdout == imap_list(account, Q3).stdout != ""
    assert done.stderr == ("imap-list: Persnal/2005/Q3: no such folder on the server; the "
                           "closest: Personal/2005/Q3, Personal/2005, Personal\n")
    assert imap_list(account, "-v", "Persnal/2005/Q3").stderr == done.stderr
    verbose = imap_list(account, "-vv", "Persnal/2005/Q3")
    assert verbose.returncode == 1
    assert verbose.stderr.startswith("imap-list: Persnal/2005/Q3: no such folder on the "
                                     "server; the closest: Personal/2005/Q3, Personal/2005, "
                                     "Personal "
                                     "(the server: ")
    nothing_close = imap_list(account, "Zzyzx")
    assert nothing_close.stderr == "imap-list: Zzyzx: no such folder on the server\n"


def test_exclude_folder_is_exact_and_warns_about_a_typo(account):
    done = imap_list(account, "--exclude-folder", "inbox", "--exclude-folder", "Sentt")
    assert done.returncode == 0
    folders = {json.loads(line)["folder"] for line in done.stdout.splitlines()}
    assert "INBOX" not in folders and "Sent" in folders and Q3 in folders
    assert done.stderr == ("imap-list: --exclude-folder Sentt: no such folder on the server; "
                           "the closest: Sent\n")
