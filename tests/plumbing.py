"""Helpers for the plumbing tests: run commands in-process, back up an account, and read
what the server and the backup hold."""

import datetime as dt
import io

from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan
from imapstream.message import to_lf

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
        held[name] = sorted((to_lf(i[b"BODY[]"]), sorted(f.decode() for f in i[b"FLAGS"]
                                                         if f != b"\\Recent"))
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
    """{folder: sorted [(LF bytes, sorted flags)]} read back from the mbox files."""
    held = {}
    for path in mbox_files(directory):
        for _offset, record, data in scan(path):
            held.setdefault(record["folder"], []).append((data, sorted(record["flags"])))
    return {folder: sorted(items) for folder, items in held.items()}


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
