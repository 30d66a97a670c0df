"""Cyrus IMAP (both namespace settings) and Courier-IMAP, from Debian's packages unpacked
(tests/cyrus.py, tests/courier.py): a backup is byte-exact and complete, every record
has its Message-ID, and a restore into an empty user completes in one run, with a rerun
appending nothing.  What they do that Dovecot does not: Cyrus creates the parents of
A/B/C and then refuses CREATE A with a bare NO; Courier refuses APPEND to a folder
selected read-only and quotes field names in FETCH (BODY[HEADER.FIELDS ("MESSAGE-ID")]).
"""

import contextlib
import dataclasses
import io
import os
import shutil
import tempfile

import orjson
import pytest
import sample_mail
from conftest import _unavailable
from courier import Confined, Courier
from cyrus import Cyrus
from debs import Unavailable
from plumbing import backup, backup_messages, run, serve, server_messages

from imapstream import errors
from imapstream.commands import imap_append, imap_list
from imapstream.imap import store
from imapstream.message import header_section, message_id
from imapstream.stream import write_message

SERVERS = {"cyrus": lambda d: Cyrus(d, altnamespace=True),
           "cyrus-noaltnamespace": lambda d: Cyrus(d, altnamespace=False),
           "courier": Courier}
# Where a user's folders go: beside INBOX (Cyrus with altnamespace), below it.
PREFIX = {"cyrus": "", "cyrus-noaltnamespace": "INBOX/", "courier": "INBOX."}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request, tmp_path_factory):
    """A running server of the kind the parameter names; .kind is that name."""
    directory = tempfile.mkdtemp(prefix=f"imapstream-{request.param}-")
    os.chmod(directory, 0o755)  # the mail processes run as nobody
    running = SERVERS[request.param](directory)
    try:
        try:
            running.start()
        except Confined as exc:
            pytest.skip(f"{request.param}: {exc}")
        except Unavailable as exc:
            _unavailable(f"{request.param}: {exc}")
        running.kind = request.param
        yield running
    finally:
        running.stop()
        with contextlib.suppress(OSError):
            shutil.copy(running.log, tmp_path_factory.getbasetemp() / f"{request.param}.log")
        shutil.rmtree(directory, ignore_errors=True)


def name(server, folder):
    """The server's name of a sample folder ("A/B", INBOX as it is); Cyrus refuses '"'
    in a name (NO Invalid mailbox name)."""
    if folder == "INBOX":
        return folder
    if server.kind == "courier":
        return PREFIX[server.kind] + folder.replace("/", ".")
    return PREFIX[server.kind] + folder.replace('"', "'")


def use(server, monkeypatch):
    """A fresh user: its IMAP_* variables set, and a logged-in client."""
    user, _password = server.new_user()
    for key, value in server.env(user).items():
        monkeypatch.setenv(key, value)
    return server.client(user)


def some_sample_mail(server):
    """The awkward sample messages and every fifth ordinary one, in every sample folder,
    its name as this server has it."""
    ordinary = sum(count for _folder, count, *_dates in sample_mail.PLAN)  # awkward after
    return [dataclasses.replace(m, folder=name(server, m.folder))
            for number, m in enumerate(sample_mail.sample_messages())
            if number % 5 == 0 or number >= ordinary]


@pytest.fixture(scope="module")
def source(server, tmp_path_factory):
    """(its environment, a client, messages, backup directory, the four statuses of
    the backup) of a user filled with some_sample_mail and backed up."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        user, _password = server.new_user()
        env = server.env(user)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        client = server.client(user)
        messages = some_sample_mail(server)
        for folder in sample_mail.FOLDERS:
            if not client.folder_exists(name(server, folder)):
                client.create_folder(name(server, folder))
        for message in messages:
            client.append(message.folder, message.data, flags=message.flags,
                          msg_time=message.internaldate)
        directory = tmp_path_factory.mktemp("backup")
        statuses, _missing, _stream = backup(str(directory))
        yield env, client, messages, str(directory), statuses
    client.logout()


def held(client):
    """server_messages, without the empty folders (a backup has no file for them)."""
    return {folder: items for folder, items in server_messages(client).items() if items}


def test_a_backup_is_byte_exact_and_complete(server, source, monkeypatch):
    env, client, messages, directory, statuses = source
    assert statuses == (0, 0, 0, 0)
    assert sum(map(len, held(client).values())) == len(messages)
    assert backup_messages(directory) == held(client)
    # Every listing record has the Message-ID the message has, however the server
    # spells the header section's name.
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    status, listed = run(imap_list, ["--all"])
    records = [orjson.loads(line) for line in listed.splitlines()]
    ids = sorted(r["message_id"] or "" for r in records if "uid" in r)
    assert status == 0 and ids == sorted(
        message_id(header_section(m.data)) or "" for m in messages)


def test_the_commands_behind_a_login_are_answered_once(source, monkeypatch):
    """imap-list --auth login sends its ENABLE and LIST-STATUS behind LOGIN before the
    answer (imap/listing_ahead.py): each server answers them once, and the listing is
    the one a login by the default mechanism gives (Cyrus answered a command sent
    behind AUTHENTICATE twice: nothing goes there)."""
    env = source[0]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert run(imap_list, ["--all", "--auth", "login"]) == run(imap_list, ["--all"])


def test_a_restore_completes_in_one_run_and_a_rerun_appends_nothing(server, source,
                                                                    monkeypatch, capsys):
    _env, client, _messages, directory, _statuses = source
    target = use(server, monkeypatch)
    capsys.readouterr()
    assert run(imap_append, ["-d", directory])[0] == errors.OK
    assert capsys.readouterr().err == ""
    assert held(target) == held(client)
    assert run(imap_append, ["-d", directory, "--json"]) == (errors.OK, b"")
    assert held(target) == held(client)


def test_a_parent_after_its_child_is_appended_to(server, monkeypatch):
    """A stream that names A/B/C before A: Cyrus made A with A/B/C and refuses CREATE A
    (NO Mailbox already exists); A is listed again and its message appended."""
    client = use(server, monkeypatch)
    child, parent = name(server, "A/B/C"), name(server, "A")
    data = {child: b"Subject: child\r\nMessage-ID: <c@x>\r\n\r\nc\r\n",
            parent: b"Subject: parent\r\nMessage-ID: <p@x>\r\n\r\np\r\n"}
    stream = b"".join(_frame({"folder": folder}, body) for folder, body in data.items())
    assert run(imap_append, ["--from-stream"], stream)[0] == errors.OK
    assert run(imap_append, ["--from-stream", "--json"], stream) == (errors.OK, b"")
    held = server_messages(client)
    assert {folder: held[folder] for folder in data} == {
        folder: [(body.replace(b"\r\n", b"\n"), [])] for folder, body in data.items()}


def _frame(record, data):
    out = io.BytesIO()
    write_message(out, record, data)
    return out.getvalue()


@pytest.mark.parametrize("key", [b'BODY[HEADER.FIELDS ("MESSAGE-ID")]',
                                 b'BODY[HEADER.FIELDS ("Message-ID")]',
                                 b"BODY[header.fields (message-id)]",
                                 b'BODY[HEADER.FIELDS  ( "MESSAGE\\-ID" )]'])
def test_the_header_section_is_found_however_spelled(monkeypatch, key):
    """RFC 3501 allows the field names as atoms or quoted strings, in any case."""
    mail = b"Subject: a\r\nMessage-ID: <spelled@x>\r\n\r\nbody\r\n"

    def fetch(session, tag, args):
        header = b"Message-ID: <spelled@x>\r\n\r\n"
        session.send(b'* 1 FETCH (UID 1 FLAGS () INTERNALDATE "01-Jul-2005 12:00:00 +0000" '
                     b"RFC822.SIZE %d %s {%d}\r\n%s)\r\n%s OK done\r\n"
                     % (len(mail), key, len(header), header, tag))

    with serve(monkeypatch, {"INBOX": [mail]}, handlers={"FETCH": fetch}):
        status, out = run(imap_list, ["INBOX"])
    assert status == 0
    assert [orjson.loads(line).get("message_id") for line in out.splitlines()][:1] == [
        "<spelled@x>"]


def test_a_restore_creates_parents_before_children(dovecot, new_user, monkeypatch, tmp_path):
    """The backup's files in the order a restore takes them: each folder before its
    subfolders, whatever the order of their file names (A.B.mbox sorts before A.mbox)."""
    user, _password = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    folders = ["A/B/C", "A", "AB", "A/B", "A/AB"]
    for folder in folders:
        status, _ = run(imap_append, [folder], b"From x Sat Jul  1 10:00:00 2005\nSubject: "
                        + folder.encode() + b"\n\nx\n")
        assert status == 0
    statuses, _missing, _stream = backup(str(tmp_path))
    assert statuses == (0, 0, 0, 0)
    target, _password = new_user("fs")
    for key, value in dovecot.env(target).items():
        monkeypatch.setenv(key, value)
    status, out = run(imap_append, ["-d", str(tmp_path), "--dry-run"])
    assert status == 0
    assert [orjson.loads(line)["folder"] for line in out.splitlines()] == [
        "A", "A/AB", "A/B", "A/B/C", "AB"]


def test_a_folder_made_since_the_listing_is_listed_not_assumed_empty(dovecot, new_user,
                                                                     monkeypatch):
    """Dovecot answers NO [ALREADYEXISTS] to CREATE of a folder another client made after
    imap-append's LIST: the folder is listed, so the message it holds is not doubled."""
    user, _password = new_user("fs")
    for key, value in dovecot.env(user).items():
        monkeypatch.setenv(key, value)
    held = b"Subject: held\r\nMessage-ID: <held@x>\r\n\r\nh\r\n"
    new = b"Subject: new\r\nMessage-ID: <new@x>\r\n\r\nn\r\n"
    listing = store.Store.folders

    def folders_then_another_client(self):
        listed = listing(self)
        with dovecot.client(user) as client:
            client.create_folder("Later")
            client.append("Later", held)
        return listed

    monkeypatch.setattr(store.Store, "folders", folders_then_another_client)
    stream = _frame({"folder": "Later"}, held) + _frame({"folder": "Later"}, new)
    status, out = run(imap_append, ["--from-stream", "--json"], stream)
    assert status == errors.OK
    assert [orjson.loads(line)["message_id"] for line in out.splitlines()] == ["<new@x>"]
    with dovecot.client(user) as client:
        assert server_messages(client)["Later"] == sorted(
            (data.replace(b"\r\n", b"\n"), []) for data in (held, new))
