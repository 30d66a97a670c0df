"""imap-append against a real Dovecot: a backup restored into another user gives back every
message byte for byte with its flags, keywords and INTERNALDATE, count for count; a rerun
or a resumed restore adds nothing; folders map across hierarchy delimiters."""

import datetime as dt
import gzip
import io
import os
import subprocess
import sys

import imapclient
import orjson
import pytest
from plumbing import AWKWARD, append_all, backup, run

from imapstream import errors
from imapstream.commands import imap_append, imap_fetch, imap_list
from imapstream.imap.transport import Client
from imapstream.stream import read_messages, write_message

UTC = dt.UTC
FLAGGED = [
    ([b"\\Seen"], dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)),
    ([b"\\Answered", b"\\Seen"], dt.datetime(2002, 3, 4, 5, 6, 7,
                                              tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    ([b"\\Flagged"], dt.datetime(2003, 4, 5, 6, 7, 8,
                                 tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30)))),
    ([b"\\Draft"], dt.datetime(2004, 5, 6, 7, 8, 9, tzinfo=UTC)),
    ([b"$label1", b"Work", b"\\Seen"], dt.datetime(2005, 6, 7, 8, 9, 10, tzinfo=UTC)),
    ([], dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)),
]


def fill(client, delimiter="/"):
    """A source account: messages with every flag kind and chosen dates, and AWKWARD."""
    for number, (flags, when) in enumerate(FLAGGED):
        body = b"Subject: flags %d\r\nMessage-ID: <f%d@x>\r\n\r\nFrom the body\r\n" % (
            number, number)
        append_all(client, "INBOX", [body], flags=flags, when=when)
    append_all(client, "INBOX", AWKWARD)
    nested = delimiter.join(["Personal", "2005", "Q3"])
    for folder in ("Archive", nested, "Entwürfe"):
        client.create_folder(folder)
        append_all(client, folder, AWKWARD[:5], flags=[b"\\Seen", b"Later"])


def holdings(client, delimiter=None):
    """{folder: sorted [(exact bytes, sorted flags, INTERNALDATE in UTC)]}, with folder
    names written with '/' when delimiter is given."""
    held = {}
    for flags, _delimiter, name in client.list_folders():
        if b"\\Noselect" in flags:
            continue
        client.select_folder(name, readonly=True)
        uids = client.search("ALL")
        items = client.fetch(uids, ["BODY.PEEK[]", "FLAGS", "INTERNALDATE"]) if uids else {}
        key = name.replace(delimiter, "/") if delimiter else name
        held[key] = sorted((i[b"BODY[]"], sorted(f for f in i[b"FLAGS"] if f != b"\\Recent"),
                            i[b"INTERNALDATE"].astimezone(UTC)) for i in items.values())
    return {folder: items for folder, items in held.items() if items}


@pytest.fixture
def target(dovecot, new_user, monkeypatch):
    """A second, empty user; the IMAP_* variables now name it (the commands that read
    the source must be run before this fixture, or be given the source's)."""

    def make(layout="fs"):
        user, _ = new_user(layout)
        for key, value in dovecot.env(user).items():
            monkeypatch.setenv(key, value)
        return dovecot.client(user)

    return make


def sh(command, env, cwd):
    """command through bash and real pipes, with the installed scripts on PATH."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    return subprocess.run(["bash", "-o", "pipefail", "-c", command], env=dict(env, PATH=path),
                          cwd=cwd, capture_output=True, timeout=120)


def records(out):
    return [orjson.loads(line) for line in out.splitlines()]


def frame(record, data):
    out = io.BytesIO()
    write_message(out, record, data)
    return out.getvalue()


def message_ends(stream):
    inp, ends = io.BytesIO(stream), []
    for _ in read_messages(inp):
        ends.append(inp.tell())
    return ends


def count_appends(monkeypatch):
    """The number of messages of each APPEND command, as a list filled while it runs."""
    sizes, real = [], Client.append_exact

    def counting(client, folder, items):
        sizes.append(len(items))
        return real(client, folder, items)

    monkeypatch.setattr(Client, "append_exact", counting)
    return sizes


def test_a_restore_gives_back_bytes_flags_keywords_and_dates(account, target, tmp_path,
                                                             monkeypatch):
    fill(account)
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    original = holdings(account)
    restored = target()
    appends = count_appends(monkeypatch)
    status, out = run(imap_append, ["-d", str(tmp_path), "--json"])
    assert status == errors.OK
    assert holdings(restored) == original
    # One MULTIAPPEND per folder.
    assert sorted(appends) == sorted(len(items) for items in original.values())
    assert len(original["INBOX"]) == len(FLAGGED) + len(AWKWARD)
    # --json names what went where: the UIDs hold the messages the records say.
    appended = records(out)
    assert len(appended) == sum(len(items) for items in original.values())
    restored.select_folder("Archive", readonly=True)
    archive = [r for r in appended if r["folder"] == "Archive"]
    fetched = restored.fetch([r["uid"] for r in archive], ["RFC822.SIZE"])
    assert {r["uid"]: r["size"] for r in archive} == {
        uid: item[b"RFC822.SIZE"] for uid, item in fetched.items()}
    assert {r["uidvalidity"] for r in archive} == {
        restored.folder_status("Archive", [b"UIDVALIDITY"])[b"UIDVALIDITY"]}


def test_a_second_restore_adds_nothing(account, target, tmp_path):
    fill(account)
    backup(str(tmp_path))
    restored = target()
    assert run(imap_append, ["-d", str(tmp_path)])[0] == errors.OK
    before = holdings(restored)
    assert run(imap_append, ["-d", str(tmp_path), "--json"]) == (errors.OK, b"")
    assert run(imap_append, ["-d", str(tmp_path), "--dry-run"]) == (errors.OK, b"")
    assert holdings(restored) == before
    # Identical copies count: the folder holds two, so of three in the input one is
    # appended, once.
    stream = frame({"folder": "INBOX"}, AWKWARD[3]) * 3
    status, out = run(imap_append, ["--from-stream", "--json"], stream)
    assert status == errors.OK and len(records(out)) == 1
    assert run(imap_append, ["INBOX", "--json"], stream) == (errors.OK, b"")
    assert sum(body == AWKWARD[3] for body, _, _ in holdings(restored)["INBOX"]) == 3


def test_an_interrupted_restore_resumes(account, target, tmp_path, capsys):
    fill(account)
    status, stream = run(imap_fetch, [], run(imap_list, ["--all"])[1])
    original = holdings(account)
    restored = target()
    ends = message_ends(stream)
    cut = stream[: stream.index(b"\n", ends[len(ends) // 2]) + 10]  # inside a message
    status, out = run(imap_append, ["--from-stream", "--json"], cut)
    assert status == errors.DATAERR
    assert "truncated message stream" in capsys.readouterr().err
    partial = sum(len(items) for items in holdings(restored).values())
    assert 0 < partial == len(records(out)) < sum(len(items) for items in original.values())
    status, out = run(imap_append, ["--from-stream", "--json"], stream)
    assert status == errors.OK and partial + len(records(out)) == sum(map(len, original.values()))
    assert holdings(restored) == original


def test_a_compressed_backup_and_compressed_stdin(account, target, tmp_path):
    fill(account)
    assert backup(str(tmp_path), "-z", "gzip")[0] == (0, 0, 0, 0)
    assert "INBOX.mbox.gz" in os.listdir(tmp_path)
    original = holdings(account)
    restored = target()
    assert run(imap_append, ["-d", str(tmp_path)])[0] == errors.OK
    assert holdings(restored) == original
    # An mbox on stdin, compressed, into a folder named on the command line.
    inbox = (tmp_path / "INBOX.mbox.gz").read_bytes()
    status, out = run(imap_append, ["Copy", "--json"], inbox)
    assert status == errors.OK and len(records(out)) == len(original["INBOX"])
    assert holdings(restored)["Copy"] == original["INBOX"]
    assert run(imap_append, ["Copy", "--json"], gzip.decompress(inbox)) == (errors.OK, b"")


def test_a_torn_backup_file_is_reported_and_the_others_restored(account, target, tmp_path,
                                                                 capsys):
    append_all(account, "INBOX", AWKWARD)
    account.create_folder("Archive")
    append_all(account, "Archive", AWKWARD[:5])
    backup(str(tmp_path))
    archive = tmp_path / "Archive.mbox"
    archive.write_bytes(archive.read_bytes()[:-10])
    restored = target()
    capsys.readouterr()
    assert run(imap_append, ["-d", str(tmp_path)])[0] == errors.DATAERR
    [err] = capsys.readouterr().err.splitlines()
    assert err.startswith(f"imap-append: {archive}: the last message (at byte ")
    assert {folder: len(items) for folder, items in holdings(restored).items()} == {
        "INBOX": len(AWKWARD), "Archive": 4}


def test_nested_folders_across_delimiters(account, target, tmp_path):
    fill(account, "/")
    backup(str(tmp_path))
    original = holdings(account)
    restored = target("maildir++")
    assert run(imap_append, ["-d", str(tmp_path)])[0] == errors.OK
    names = {name for _flags, _delimiter, name in restored.list_folders()}
    assert {"Personal.2005.Q3", "Entwürfe", "Archive"} <= names
    assert holdings(restored, ".") == original
    # Files without X-Imapstream headers are named by their file name.
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "Old.Mail.mbox").write_bytes(b"From a@b Sat Jul  1 10:00:00 2005\nSubject: o\n\nx\n")
    assert run(imap_append, ["-d", str(plain)])[0] == errors.OK
    assert len(holdings(restored)["Old.Mail"]) == 1


def test_migrate_in_one_pipeline(dovecot, new_user, tmp_path):
    source_user, _ = new_user("maildir++")
    source = dovecot.client(source_user)
    fill(source, ".")
    target_user, target_password = new_user("fs")
    password_file = tmp_path / "target.pw"
    password_file.write_text(target_password + "\n")
    password_file.chmod(0o600)
    env = dict(os.environ, **dovecot.env(source_user))  # the source side: IMAP_* variables
    # The target side: its own options, and IMAP_PASSWORD emptied for it alone, since
    # the variable wins over --password-file.
    pipeline = (f"imap-list --all | imap-fetch | IMAP_PASSWORD= imap-append --from-stream "
                f"--json -u {target_user} --password-file {password_file}")
    done = sh(pipeline, env, tmp_path)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    assert done.stdout.count(b"\n") == sum(len(items) for items in holdings(source).values())
    assert holdings(dovecot.client(target_user)) == holdings(source, ".")
    again = sh(pipeline, env, tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, b"", b"")


def test_mbox_headers_give_flags_and_the_from_line_the_date(target):
    restored = target()
    mbox = (b"From a@b Sat Jul  1 10:00:00 2005\nStatus: RO\nX-Status: AF\nX-Keywords: Work\n"
            b"Subject: old\n\n>From the body\n\n"
            b"From a@b Sun Jul  2 11:00:00 2006\nSubject: unread\n\nx\n")
    status, out = run(imap_append, ["INBOX", "--json"], mbox)
    assert status == errors.OK and len(records(out)) == 2
    assert holdings(restored)["INBOX"] == [
        (b"Subject: old\r\n\r\nFrom the body\r\n",
         [b"Work", b"\\Answered", b"\\Flagged", b"\\Seen"],
         dt.datetime(2005, 7, 1, 10, 0, tzinfo=UTC)),
        (b"Subject: unread\r\n\r\nx\r\n", [], dt.datetime(2006, 7, 2, 11, 0, tzinfo=UTC)),
    ]


def test_rejected_messages_are_reported_and_the_rest_go_on(target, capsys):
    restored = target()
    stream = (frame({"folder": "INBOX", "flags": ["\\Recent", "\\Seen"]}, AWKWARD[0])
              + frame({"folder": "INBOX"}, b"")
              + frame({"folder": "INBOX", "flags": ["bad(keyword"]}, AWKWARD[1]))
    status, out = run(imap_append, ["--from-stream", "--json"], stream)
    assert status == errors.PARTIAL
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "imap-append: message 3 (folder INBOX): dropped flags IMAP cannot " \
                     "carry: bad(keyword"
    assert err[1].startswith("imap-append: message 2 (folder INBOX): server said ")
    assert len(err) == 2
    assert [r["flags"] for r in records(out)] == [["\\Seen"], []]
    assert [body for body, _, _ in holdings(restored)["INBOX"]] == sorted(AWKWARD[:2])


def test_one_append_per_message_without_multiappend(target, monkeypatch):
    restored = target()
    real = imapclient.IMAPClient.has_capability
    monkeypatch.setattr(imapclient.IMAPClient, "has_capability",
                        lambda client, name: name != "MULTIAPPEND" and real(client, name))
    appends = count_appends(monkeypatch)
    stream = b"".join(frame({"folder": "INBOX", "flags": ["\\Flagged"]}, body)
                      for body in AWKWARD)
    status, out = run(imap_append, ["--from-stream", "--json"], stream)
    assert status == errors.OK and appends == [1] * len(AWKWARD)
    assert [r["uid"] for r in records(out)] == list(range(1, len(AWKWARD) + 1))
    held = holdings(restored)["INBOX"]
    assert [body for body, _, _ in held] == sorted(AWKWARD)
    assert all(flags == [b"\\Flagged"] for _, flags, _ in held)


def test_no_create_refuses_a_missing_folder(target, capsys):
    restored = target()
    stream = frame({"folder": "Gone"}, AWKWARD[0]) + frame({"folder": "INBOX"}, AWKWARD[1])
    assert run(imap_append, ["--from-stream", "--no-create"], stream)[0] == errors.PARTIAL
    assert "imap-append: Gone: no such folder, and --no-create\n" == capsys.readouterr().err
    assert [name for _f, _d, name in restored.list_folders()] == ["INBOX"]
    assert len(holdings(restored)["INBOX"]) == 1


def test_dry_run_touches_nothing(target):
    restored = target()
    stream = frame({"folder": "New/Sub", "delimiter": "/", "flags": ["\\Seen"],
                    "internaldate": "2005-07-01T12:00:00+02:00"}, AWKWARD[1])
    status, out = run(imap_append, ["--from-stream", "--dry-run"], stream)
    assert status == errors.OK
    assert records(out) == [{"folder": "New/Sub", "uidvalidity": None, "uid": None,
                             "message_id": "<shared@x>", "size": len(AWKWARD[1]),
                             "flags": ["\\Seen"], "internaldate": "2005-07-01T12:00:00+02:00"}]
    assert [name for _f, _d, name in restored.list_folders()] == ["INBOX"]


def test_bad_input_and_usage(target, capsys):
    target()
    assert run(imap_append, ["INBOX"], b"hello\n")[0] == errors.DATAERR
    assert capsys.readouterr().err == ("imap-append: standard input is neither a message "
                                       "stream nor an mbox\n")
    assert run(imap_append, ["INBOX"], b"\x1f\x8b\x08\x00garbage")[0] == errors.DATAERR
    assert "damaged compressed data" in capsys.readouterr().err
    assert run(imap_append, ["--from-stream"], frame({"uid": 1}, AWKWARD[0]))[0] == errors.DATAERR
    assert capsys.readouterr().err == ("imap-append: message 1: no folder in its record; "
                                       "give FOLDER\n")
    assert run(imap_append, [])[0] == errors.USAGE
    assert run(imap_append, ["INBOX", "--from-stream"])[0] == errors.USAGE
    assert run(imap_append, ["INBOX"], b"")[0] == errors.OK
