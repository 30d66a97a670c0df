"""Bad input and failures: one line on stderr prefixed with the command's name, a
documented exit status, and no mbox left incomplete."""

import os

import pytest
from plumbing import AWKWARD, append_all, backup, backup_messages, one_line, run, server_messages

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox.reader import scan
from imapstream.stream import write_message

GOOD = b'{"folder":"INBOX","delimiter":"/","uidvalidity":1,"uid":%d,"size":3}\n'


def test_malformed_ndjson_names_the_line(tmp_path, capsys):
    stdin = GOOD % 1 + GOOD % 2 + b'{"folder": "INBOX", "uid": \n' + GOOD % 4
    status, out = run(mbox_ids, ["--missing", "-d", str(tmp_path)], stdin)
    assert status == errors.DATAERR
    assert "mbox-ids: line 3: not a JSON object" in one_line(capsys, "mbox-ids")
    assert out == GOOD % 1 + GOOD % 2  # streamed before the bad line; nothing after it
    status, out = run(mbox_ids, ["--missing", "-d", str(tmp_path)], b'{"folder":"INBOX"}\n')
    assert status == errors.DATAERR and out == b""
    assert 'line 1: message record without a positive integer "uid"' in capsys.readouterr().err


def test_a_truncated_stream_appends_no_partial_message(tmp_path, capsys):
    stream = b"".join(_frame({"folder": "INBOX", "delimiter": "/", "uidvalidity": 1,
                              "uid": uid}, body) for uid, body in enumerate(AWKWARD[:3], 1))
    status, _ = run(mbox_merge, ["-d", str(tmp_path)], stream[:-20])
    assert status == errors.DATAERR
    assert "truncated message stream" in capsys.readouterr().err
    held = backup_messages(str(tmp_path))["INBOX"]
    assert len(held) == 2
    assert run(mbox_merge, ["-d", str(tmp_path)], stream)[0] == errors.OK
    assert len(backup_messages(str(tmp_path))["INBOX"]) == 3


def _frame(record, body):
    import io
    out = io.BytesIO()
    write_message(out, record, body)
    return out.getvalue()


def test_a_file_that_is_not_an_mbox(tmp_path, capsys):
    zip_file = tmp_path / "INBOX.mbox"
    zip_file.write_bytes(b"PK\x03\x04 not mail")
    assert run(mbox_ids, [str(zip_file)])[0] == errors.DATAERR
    assert "not an mbox file" in one_line(capsys, "mbox-ids")
    stream = _frame({"folder": "INBOX", "uid": 1, "uidvalidity": 1}, b"Subject: x\r\n\r\n")
    assert run(mbox_merge, [str(zip_file)], stream)[0] == errors.DATAERR
    assert "not an mbox file" in one_line(capsys, "mbox-merge")
    assert zip_file.read_bytes() == b"PK\x03\x04 not mail"
    assert run(mbox_merge, [str(tmp_path / "x.mbox")], b"hello\n")[0] == errors.DATAERR
    assert "neither a message stream nor an mbox" in one_line(capsys, "mbox-merge")


def test_a_torn_tail_is_repaired_by_the_next_run(account, tmp_path, capsys):
    append_all(account, "INBOX", AWKWARD)
    backup(str(tmp_path))
    inbox = tmp_path / "INBOX.mbox"
    os.truncate(inbox, inbox.stat().st_size - 7)
    assert run(mbox_ids, [str(inbox)])[0] == errors.DATAERR
    assert "is cut short" in capsys.readouterr().err
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    assert "cut off a torn last message" in capsys.readouterr().err
    assert backup_messages(str(tmp_path)) == server_messages(account)


def test_a_vanished_folder_fails_alone(account, capsys):
    for name in ("Keep", "Gone"):
        account.create_folder(name)
        append_all(account, name, AWKWARD[:2])
    _, listed = run(imap_list, ["Gone", "Keep"])
    account.delete_folder("Gone")
    status, stream = run(imap_fetch, [], listed)
    assert status == errors.PARTIAL
    assert stream.count(b'"folder":"Keep"') == 2 and b'"folder":"Gone"' not in stream
    assert "imap-fetch: Gone: " in one_line(capsys, "imap-fetch")
    status, listed = run(imap_list, ["Gone", "Keep"])
    assert status == errors.PARTIAL and listed.count(b"\n") == 2
    assert "imap-list: Gone: " in one_line(capsys, "imap-list")


def test_a_stale_uidvalidity_is_refused(account, capsys):
    append_all(account, "INBOX", AWKWARD[:1])
    _, listed = run(imap_list, ["INBOX"])
    stale = listed.replace(b'"uidvalidity":', b'"uidvalidity":1', 1)
    status, stream = run(imap_fetch, [], stale)
    assert status == errors.PARTIAL and stream == b""
    assert "UIDVALIDITY is now" in one_line(capsys, "imap-fetch")


def test_wrong_password(account, monkeypatch, capsys):
    monkeypatch.setenv("IMAP_PASSWORD", "not-the-Secret-42")
    assert run(imap_list, [])[0] == errors.NOPERM
    err = one_line(capsys, "imap-list")
    assert "login as" in err and "not-the-Secret-42" not in err


def test_untrusted_certificate_and_tls_modes(dovecot, account, monkeypatch, capsys):
    append_all(account, "INBOX", AWKWARD[:2])
    monkeypatch.setenv("IMAP_SERVER", f"{dovecot.host}:{dovecot.ssl_port}")
    monkeypatch.setenv("IMAP_TLS", "imaps")
    assert run(imap_list, ["INBOX"])[1].count(b"\n") == 2
    monkeypatch.delenv("IMAP_CAFILE")
    assert run(imap_list, [])[0] == errors.UNAVAILABLE
    assert "--cafile" in one_line(capsys, "imap-list")
    monkeypatch.setenv("IMAP_SERVER", f"{dovecot.host}:{dovecot.port}")
    monkeypatch.setenv("IMAP_TLS", "starttls")
    assert run(imap_list, [])[0] == errors.UNAVAILABLE
    monkeypatch.setenv("IMAP_TLS", "none")
    assert run(imap_list, [])[0] == errors.OK


def test_usage_errors(capsys):
    assert run(mbox_ids, ["--missing"])[0] == errors.USAGE
    assert "mbox-ids: --missing takes exactly one FILE or -d DIR" in one_line(capsys, "mbox-ids")
    assert run(imap_list, ["--bogus"])[0] == errors.USAGE
    one_line(capsys, "imap-list")


@pytest.mark.parametrize("compression,suffix", [("gzip", ".gz"), ("bzip2", ".bz2"),
                                                ("xz", ".xz")])
def test_a_cut_compressed_stream_is_repaired(account, tmp_path, capsys, compression, suffix):
    append_all(account, "INBOX", AWKWARD[:4])
    backup(str(tmp_path), "-z", compression)
    append_all(account, "INBOX", AWKWARD[4:])
    backup(str(tmp_path))
    path = tmp_path / ("INBOX.mbox" + suffix)
    whole = path.stat().st_size
    os.truncate(path, whole - 9)  # the second member or stream is cut short
    assert run(mbox_ids, [str(path)])[0] == errors.DATAERR
    capsys.readouterr()
    assert backup(str(tmp_path))[0] == (0, 0, 0, 0)
    assert "cut off a compressed stream" in capsys.readouterr().err
    assert backup_messages(str(tmp_path)) == server_messages(account)


def test_a_file_that_is_not_an_mbox_fails_alone(account, tmp_path, capsys):
    account.create_folder("Other")
    append_all(account, "INBOX", AWKWARD[:2])
    append_all(account, "Other", AWKWARD[:3])
    (tmp_path / "INBOX.mbox").write_bytes(b"PK\x03\x04 not mail")
    statuses, _, _ = backup(str(tmp_path))
    assert statuses == (errors.OK, errors.DATAERR, errors.OK, errors.OK)
    assert "INBOX.mbox: not an mbox file" in capsys.readouterr().err
    assert len(list(scan(str(tmp_path / "Other.mbox")))) == 3
    # mbox-merge alone refuses that file too, and appends the other folders.
    (tmp_path / "Other.mbox").unlink()
    _, stream = run(imap_fetch, [], run(imap_list, ["--all"])[1])
    assert run(mbox_merge, ["-d", str(tmp_path)], stream)[0] == errors.DATAERR
    assert len(list(scan(str(tmp_path / "Other.mbox")))) == 3
    assert (tmp_path / "INBOX.mbox").read_bytes() == b"PK\x03\x04 not mail"


def test_a_boolean_is_not_a_positive_integer(tmp_path, capsys):
    """JSON's true is no UID, though Python counts it as 1."""
    record = b'{"folder":"INBOX","uid":true}\n'
    assert run(mbox_ids, ["--missing", "-d", str(tmp_path)], record)[0] == 65
    assert capsys.readouterr().err == (
        'mbox-ids: line 1: message record without a positive integer "uid"\n')
