"""Round trips of a run against the real Dovecot (issue 13), counted from a protocol
trace (tests/trace_proxy.py): the login takes its capabilities from the greeting and
the login's OK, goes out with the CAPABILITY after STARTTLS, imap-list's ENABLE and
LIST-STATUS behind it, and LOGOUT is not waited for; a folder with new mail and changed flags
has its EXAMINE, new-UID FETCH and CHANGEDSINCE FETCH in the listing plan sent with the
others.  Each count is fixed: it grows when a step goes back to waiting."""

import os

import orjson
from plumbing import append_all, run
from trace_proxy import TraceProxy

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge

FOLDERS = [f"Box{n}" for n in range(4)]


def mail(folder, n):
    return b"Subject: %s %d\r\nMessage-ID: <%s.%d@rt>\r\n\r\nbody\r\n" % (
        folder.encode(), n, folder.encode(), n)


def records(out):
    return [orjson.loads(line) for line in out.splitlines()]


def names(commands):
    """(command name, UID FETCH as FETCH, and its folder or items) of each line sent."""
    found = []
    for line in commands:
        words = line.split(b" ")
        if len(words) > 1 and words[1] == b"UID":
            words = words[1:]
        if len(words) > 1:
            found.append(words[1])
    return found


def test_a_listing_over_starttls_takes_three_round_trips(dovecot, account, monkeypatch,
                                                         outward):
    """The greeting (with its capabilities: no CAPABILITY before STARTTLS) and the
    answer to the STARTTLS sent on connecting (dial.py), the TLS handshake, then
    CAPABILITY again over TLS with LOGIN (chosen from the capabilities before TLS,
    which those after it confirm), ENABLE and LIST-STATUS sent behind it (logins.py);
    LOGOUT not waited for.  That is across a network (an address that is not
    loopback); on loopback STARTTLS waits for the greeting: four."""
    assert os.environ["IMAP_TLS"] == "starttls"
    for host, first, trips in (("127.0.0.1", b"STARTTLS", 4), (outward, b"dial STARTTLS", 3)):
        with TraceProxy(dovecot.port, host=host) as proxy:
            monkeypatch.setenv("IMAP_SERVER", f"{host}:{proxy.port}")
            status, out = run(imap_list, [])
            assert status == errors.OK
            assert "INBOX" in {r["folder"] for r in records(out)}
            sent = proxy.commands()[0]
            assert sent == first or first == b"STARTTLS" and sent.endswith(b" STARTTLS") \
                and not sent.startswith(b"dial ")
            assert proxy.round_trips() == trips


def backup_run(directory):
    """imap-list --all --since DIR | mbox-ids --missing | imap-fetch | mbox-merge; the
    listing."""
    listing, data = None, b""
    for module, argv in ((imap_list, ["--all", "--since", directory]),
                         (mbox_ids, ["--missing", "-d", directory]), (imap_fetch, []),
                         (mbox_merge, ["-d", directory])):
        status, data = run(module, argv, data)
        assert status == errors.OK
        listing = data if listing is None else listing
    return listing


def changed_run(dovecot, account, monkeypatch, directory, changed):
    """In each folder of changed: a new message and \\Flagged on its first; then the
    listing through the proxy: (round trips, lines sent, records)."""
    user = os.environ["IMAP_USER"]
    for folder in changed:
        append_all(account, folder, [mail(folder, 9)])
        dovecot.doveadm("flags", "add", "-u", user, "\\Flagged", "mailbox", folder, "uid", "1")
    with TraceProxy(dovecot.port) as proxy:
        monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{proxy.port}")
        monkeypatch.setenv("IMAP_TLS", "none")  # a trace to read; loopback, so no warning
        status, out = run(imap_list, ["--all", "--since", directory])
    monkeypatch.setenv("IMAP_SERVER", f"127.0.0.1:{dovecot.port}")
    monkeypatch.setenv("IMAP_TLS", "starttls")
    assert status == errors.OK
    return proxy.round_trips(), proxy.commands(), records(out)


def test_changed_folders_are_listed_and_asked_their_changes_in_one_round_trip(
        dovecot, account, monkeypatch, tmp_path):
    for folder in FOLDERS:
        account.create_folder(folder)
        append_all(account, folder, [mail(folder, 1), mail(folder, 2)])
    directory = str(tmp_path / "backup")
    os.makedirs(directory)
    backup_run(directory)
    one, _commands, _listed = changed_run(dovecot, account, monkeypatch, directory, FOLDERS[:1])
    backup_run(directory)
    three, commands, listed = changed_run(dovecot, account, monkeypatch, directory,
                                          FOLDERS[1:])
    # The greeting, AUTHENTICATE CRAM-MD5 (two), ENABLE with LIST-STATUS, then every
    # folder's commands together.
    assert one == three == 5
    new = [(r["folder"], r["message_id"]) for r in listed if "message_id" in r]
    assert sorted(new) == [(folder, f"<{folder}.9@rt>") for folder in FOLDERS[1:]]
    updates = [(r["folder"], r["uid"], r["flags"]) for r in listed if "update" in r]
    assert sorted(updates) == [(folder, 1, ["\\Flagged"]) for folder in FOLDERS[1:]]
    sent = names(commands)
    assert sent.count(b"EXAMINE") == 3  # the changed folders, once each
    changes = [line for line in commands if b"CHANGEDSINCE" in line]
    assert [line.split(b" ")[3:5] for line in changes] == [[b"1", b"(UID"]] * 3
    assert all(line.endswith(b" VANISHED)") for line in changes)
    assert b"NOOP" not in sent  # no listing dropped and sent again
