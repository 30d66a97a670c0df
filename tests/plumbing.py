"""Helpers for the plumbing tests: run commands in-process, back up an account, and read
what the server and the backup hold."""

import bz2
import datetime as dt
import gzip
import io
import lzma
import os
import re
from urllib.parse import unquote

from fake_imap import FakeIMAP

from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge

UTC = dt.UTC
AWKWARD = [
    b"Subject: no message-id\r\n\r\nbody\r\n",
    b"Subject: shared 1\r\nMessage-ID: <shared@x>\r\n\r\nfirst text\r\n",
    b"Subject: shared 2\r\nMessage-ID: <shared@x>\r\n\r\nsecond, different text\r\n",
    b"Subject: copy\r\nMessage-ID: <copy@x>\r\n\r\nidentical\r\n",
    b"Subject: copy\r\nMessage-ID: <copy@x>\r\n\r\nidentical\r\n",
    b"Subject: two ids\r\nMessage-ID: <one@x>\r\nMessage-ID: <two@x>\r\n\r\nb\r\n",
    b"Subject: folded\r\nMessage-ID:\r\n <folded@x>\r\n\r\nb\r\n",
    b"Subject: from lines\r\n\r\nFrom here\r\n>From there\r\n>>From everywhere\r\nFrom \r\n",
    b"From someone@x Sat Jul  1 10:00:00 2005\r\nSubject: first line is From\r\n\r\nb\r\n",
    b"Subject: 8bit \xe4\xf6\xfc\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n"
    b"\xe9t\xe9 \xff\r\n",
    b"Subject: no trailing newline\r\n\r\nlast line",
    b"Subject: headers only\r\nMessage-ID: <headers@x>\r\n",
    b"Subject: own status\r\nStatus: RO\r\nX-Status: F\r\nX-Keywords: fake\r\n\r\nb\r\n",
]


def run(module, argv, stdin=b""):
    out = io.BytesIO()
    status = module.main(list(argv), io.BytesIO(stdin), out)
    return status, out.getvalue()


def pipeline(directory, *list_options):
    """imap-list --all | mbox-ids --missing -d directory | imap-fetch | mbox-merge -d
    directory, in-process; the four exit statuses."""
    data, statuses = b"", []
    for module, argv in ((imap_list, ["--all", *list_options]),
                         (mbox_ids, ["--missing", "-d", directory]),
                         (imap_fetch, []), (mbox_merge, ["-d", directory])):
        status, data = run(module, argv, data)
        statuses.append(status)
    return statuses


def serve(monkeypatch, mailbox, **options):
    """A tests/fake_imap.py server for mailbox, its IMAP_* variables set."""
    server = FakeIMAP(mailbox, **options)
    for key, value in server.env().items():
        monkeypatch.setenv(key, value)
    return server


def session_processes(session):
    """The PIDs of the live processes in a session (zombies are done)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                state, *fields = f.read().rpartition(b")")[2].split()
        except (OSError, ValueError):
            continue
        if int(fields[3]) == session and state != b"Z":
            found.append(int(entry))
    return found


def backup(directory, *merge_options):
    """The whole-account pipeline in-process; returns (statuses, missing, stream)."""
    s1, listed = run(imap_list, ["--all"])
    s2, missing = run(mbox_ids, ["--missing", "-d", directory], listed)
    s3, stream = run(imap_fetch, [], missing)
    s4, _ = run(mbox_merge, ["-d", directory, *merge_options], stream)
    return (s1, s2, s3, s4), missing, stream


def append_all(client, folder, messages, flags=(), when=None):
    for number, data in enumerate(messages):
        client.append(folder, data, flags=flags,
                      msg_time=when or dt.datetime(2005, 7, 1, 12, number % 60, tzinfo=UTC))


def server_messages(client):
    """{folder: sorted [(LF bytes, sorted flags)]} for every selectable folder."""
    held = {}
    for flags, _delimiter, name in client.list_folders():
        if b"\\Noselect" in flags:
            continue
        client.select_folder(name, readonly=True)
        uids = client.search("ALL")
        items = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
        held[name] = sorted((i[b"BODY[]"].replace(b"\r\n", b"\n"),
                             sorted(f.decode() for f in i[b"FLAGS"] if f != b"\\Recent"))
                            for i in items.values())
    return held


def server_flags(client):
    flags = {}
    for folder_flags, _delimiter, name in client.list_folders():
        if b"\\Noselect" not in folder_flags:
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            for uid, items in (client.fetch(uids, ["FLAGS"]) if uids else {}).items():
                flags[name, uid] = sorted(items[b"FLAGS"])
    return flags


def backup_messages(directory):
    """{folder: sorted [(LF bytes, sorted flags)]} read back from the mbox files by the
    rules of imapstream(7), written out here: not by imapstream's own reader."""
    held = {}
    for name in sorted(os.listdir(directory)):
        opener = DECOMPRESS.get(os.path.splitext(name)[1])
        if name.startswith(".") or not (name.endswith(".mbox") or opener):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            text = opener(f.read()) if opener else f.read()
        for folder, data, flags in as_documented(text):
            held.setdefault(folder, []).append((data, sorted(flags)))
    return {folder: sorted(items) for folder, items in held.items()}


DECOMPRESS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
_RESERVED = rb"status|x-status|x-keywords|x-imapstream|x-uid|x-imap|x-imapbase|content-length"
_FLAG_HEADER = re.compile(rb"(Status|X-Status|X-Keywords): ?([^\n]*)\n")
_X_STATUS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}


def as_documented(text):
    """(folder, data, flags) per message of an mbox file of imapstream's (imapstream(7),
    Mbox files): a From line, X-Imapstream, the flag headers, the LF form with one '>'
    more on ^>*From  lines and reserved header lines, the padding that octets tells."""
    for message in re.split(rb"(?m)^(?=From )", text):
        if not message:
            continue
        _from_line, meta, rest = message.split(b"\n", 2)
        assert meta.startswith(b"X-Imapstream: "), meta
        fields = dict(item.split("=", 1) for item in meta[14:].decode().split("; "))
        headers = {}
        while match := _FLAG_HEADER.match(rest):
            headers[match.group(1).decode()] = match.group(2).decode()
            rest = rest[match.end():]
        rest = re.sub(rb"(?m)^>(>*From )", rb"\1", rest)
        blank = rest.find(b"\n\n")
        cut = len(rest) if blank < 0 else blank + 1
        rest = re.sub(rb"(?mi)^>(>*(?:" + _RESERVED + rb")[ \t]*:)", rb"\1", rest[:cut]) \
            + rest[cut:]
        octets = int(fields["octets"])
        data, padding = rest[:octets], rest[octets:]
        assert padding == (b"\n\n" if data and not data.endswith(b"\n") else b"\n"), padding
        flags = ["\\Seen"] if "R" in headers.get("Status", "") else []
        flags += [_X_STATUS[c] for c in headers.get("X-Status", "")]
        flags += headers.get("X-Keywords", "").split()
        yield unquote(fields["folder"]), data, flags


def one_line(capsys, prefix="imap-list"):
    """The one line a command wrote on stderr, which must start with its name."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(prefix + ": "), err
    return err


def private_file(path, text):
    """A file only its owner can read, as --password-file wants."""
    path.write_text(text)
    path.chmod(0o600)
    return path
