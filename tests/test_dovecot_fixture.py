"""The Dovecot fixture itself: layouts, TLS, auth mechanisms, UIDVALIDITY."""

from __future__ import annotations

import datetime as dt
import os

import imapclient
import pytest
from imapclient.imapclient import SENT

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: fixture test\r\n"
    b"Message-ID: <fixture-1@example.org>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)
WHEN = dt.datetime(2021, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def delimiter_of(client: imapclient.IMAPClient) -> str:
    [(_flags, delimiter, _name)] = client.list_folders("", "INBOX")
    return delimiter.decode()


@pytest.mark.parametrize(("layout", "delimiter"), [("fs", "/"), ("maildir++", "."), ("mbox", "/")])
def test_layout_delimiter_and_folders(dovecot, new_user, layout, delimiter):
    user, _password = new_user(layout)
    with dovecot.client(user) as client:
        assert delimiter_of(client) == delimiter
        nested = f"a{delimiter}b"
        client.create_folder("Entwürfe")
        client.create_folder(nested)
        names = {name for _flags, _delim, name in client.list_folders()}
        assert {"INBOX", "Entwürfe", "a", nested} <= names


def test_fixed_users(dovecot):
    for user, delimiter in [("alice", "/"), ("bob", "."), ("carol", "/")]:
        with dovecot.client(user) as client:
            assert delimiter_of(client) == delimiter


def test_append_and_read_back(dovecot, imap_user):
    user, _password = imap_user
    with dovecot.client(user) as client:
        client.normalise_times = False
        client.create_folder("Entwürfe")
        client.append(
            "Entwürfe", MESSAGE, flags=(b"\\Seen", b"\\Flagged", b"$Label1"), msg_time=WHEN
        )
        client.select_folder("Entwürfe")
        fetched = client.fetch([1], ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"])
        [(uid, data)] = fetched.items()
        assert uid == 1
        assert set(data[b"FLAGS"]) - {b"\\Recent"} == {b"\\Seen", b"\\Flagged", b"$Label1"}
        assert data[b"INTERNALDATE"] == WHEN
        assert data[b"BODY[]"] == MESSAGE
        assert data[b"RFC822.SIZE"] == len(MESSAGE)


def test_special_use_shows_once_folder_exists(dovecot, imap_user):
    user, _password = imap_user
    with dovecot.client(user) as client:
        assert client.find_special_folder(SENT) is None
        client.create_folder("Sent")
        assert client.find_special_folder(SENT) == "Sent"
        [(flags, _delim, _name)] = client.list_folders("", "Sent")
        assert SENT in flags


def test_starttls(dovecot, imap_user):
    user, password = imap_user
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=30)
    try:
        assert b"STARTTLS" in client.capabilities()
        client.starttls(dovecot.ssl_context())
        client.login(user, password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_imaps(dovecot, imap_user):
    user, password = imap_user
    with imapclient.IMAPClient(
        dovecot.host, port=dovecot.ssl_port, ssl=True, ssl_context=dovecot.ssl_context(), timeout=30
    ) as client:
        client.login(user, password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def test_imaps_rejects_untrusted_certificate(dovecot):
    import ssl

    with pytest.raises(ssl.SSLCertVerificationError):
        imapclient.IMAPClient(
            dovecot.host,
            port=dovecot.ssl_port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=30,
        )


def test_cram_md5_login(dovecot, imap_user):
    user, password = imap_user
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=30)
    try:
        assert b"AUTH=CRAM-MD5" in client.capabilities()
        typ, _data = client._imap.login_cram_md5(user, password)
        assert typ == "OK"
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_plain_login(dovecot, imap_user):
    user, password = imap_user
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=30)
    try:
        client.plain_login(user, password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_wrong_password_is_rejected(dovecot, imap_user):
    user, _password = imap_user
    client = imapclient.IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=30)
    try:
        with pytest.raises(imapclient.exceptions.LoginError):
            client.login(user, "wrong")
    finally:
        client.shutdown()


@pytest.mark.parametrize("layout", ["fs", "maildir++", "mbox"])
def test_doveadm_changes_uidvalidity(dovecot, new_user, layout):
    user, _password = new_user(layout)
    with dovecot.client(user) as client:
        client.append("INBOX", MESSAGE)
        before = client.select_folder("INBOX")[b"UIDVALIDITY"]
    for wanted in (before + 1000, 7):
        dovecot.doveadm("mailbox", "update", "--uid-validity", str(wanted), "-u", user, "INBOX")
        with dovecot.client(user) as client:
            status = client.select_folder("INBOX")
            assert status[b"UIDVALIDITY"] == wanted
            assert status[b"EXISTS"] == 1


def test_mbox_flags_as_dovecot_sees_them(dovecot, new_user):
    user, _password = new_user("mbox")
    # Dovecot honours X-Keywords only for keywords listed in the first
    # message's X-IMAPbase header ("<uidvalidity> <last uid> <keywords...>");
    # others are dropped, and opening the mbox (even EXAMINE) rewrites it.
    mbox = (
        b"From alice@example.org Thu Mar  4 05:06:07 2021\n"
        b"From: alice@example.org\nSubject: one\nX-IMAPbase: 1234 0 $Label1\n"
        b"Status: RO\nX-Status: AF\n"
        b"X-Keywords: $Label1\n\nbody one\n\n"
        b"From alice@example.org Thu Mar  4 05:06:08 2021\n"
        b"From: alice@example.org\nSubject: two\n\n>From the start\n\n"
    )
    dovecot.write_mail_file(user, "mail/Archive", mbox)
    with dovecot.client(user) as client:
        assert client.select_folder("Archive", readonly=True)[b"UIDVALIDITY"] == 1234
        flags = client.get_flags([1, 2])
        assert set(flags[1]) == {b"\\Seen", b"\\Answered", b"\\Flagged", b"$Label1"}
        assert set(flags[2]) <= {b"\\Recent"}
        body = client.fetch([2], ["BODY.PEEK[TEXT]"])[2][b"BODY[TEXT]"]
        assert body == b">From the start\r\n"


def test_command_env(dovecot, imap_user, tmp_path):
    from conftest import REPO, command_env

    user, password = imap_user
    env = command_env(dovecot, user, tmp_path)
    assert env["HOME"] == str(tmp_path)
    assert env["PATH"].startswith(str(REPO / "bin") + os.pathsep)
    assert {key: env[key] for key in env if key.startswith("IMAP_")} == {
        "IMAP_SERVER": f"127.0.0.1:{dovecot.port}",
        "IMAP_USER": user,
        "IMAP_PASSWORD": password,
        "IMAP_TLS": "starttls",
        "IMAP_CAFILE": str(dovecot.cafile),
    }
