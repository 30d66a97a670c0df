"""Choosing folders by name: INBOX in any case, and a name that matches no folder (a
typo) reported in the tool's words with the closest names the server lists."""

import json
import subprocess

import sample_mail


def imap_list(env, *argv):
    return subprocess.run(["imap-list", *argv], env=env, capture_output=True, text=True,
                          timeout=60)


def test_inbox_in_any_case_is_the_servers_inbox(sample_account):
    for spelling in ("Inbox", "inbox", "INBOX"):
        done = imap_list(sample_account, spelling)
        assert done.returncode == 0, done.stderr
        folders = {json.loads(line)["folder"] for line in done.stdout.splitlines()}
        assert folders == {"INBOX"}


def test_a_named_folder_the_server_lacks_fails_with_the_closest_names(sample_account):
    done = imap_list(sample_account, "Persnal/2005/Q3", sample_mail.Q3)
    assert done.returncode == 1  # the other folder is listed whole
    assert done.stdout == imap_list(sample_account, sample_mail.Q3).stdout != ""
    assert done.stderr == ("imap-list: Persnal/2005/Q3: no such folder on the server; the "
                           "closest: Personal/2005/Q3, Personal/2005, Personal\n")
    assert imap_list(sample_account, "-v", "Persnal/2005/Q3").stderr == done.stderr
    verbose = imap_list(sample_account, "-vv", "Persnal/2005/Q3")
    assert verbose.returncode == 1
    assert verbose.stderr.startswith("imap-list: Persnal/2005/Q3: no such folder on the "
                                     "server; the closest: Personal/2005/Q3, Personal/2005, "
                                     "Personal "
                                     "(the server: ")
    nothing_close = imap_list(sample_account, "Zzyzx")
    assert nothing_close.stderr == "imap-list: Zzyzx: no such folder on the server\n"


def test_exclude_folder_is_exact_and_warns_about_a_typo(sample_account):
    done = imap_list(sample_account, "--exclude-folder", "inbox", "--exclude-folder", "Sentt")
    assert done.returncode == 0
    folders = {json.loads(line)["folder"] for line in done.stdout.splitlines()}
    assert "INBOX" not in folders and "Sent" in folders and sample_mail.Q3 in folders
    assert done.stderr == ("imap-list: --exclude-folder Sentt: no such folder on the server; "
                           "the closest: Sent\n")
