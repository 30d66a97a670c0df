"""Thunderbird's layout of local folders, as hard links to a backup directory's files
(imapbackup --thunderbird).

The folder Personal/2005/Q3, in the backup directory as Personal.2005.Q3.mbox, appears
in the Thunderbird directory as Personal.sbd/2005.sbd/Q3, a hard link to that file; a
parent folder without mail of its own gets an empty file (Personal, Personal.sbd/2005)
beside its .sbd directory.  The folder name is split at its delimiter; within a part
only "/" and NUL are encoded (%2F, %00), and a part "." or ".." as %2E or %2E%2E."""

import contextlib
import os


def lay_out(records, store, top):
    """Link each file of store that records name (dicts with "file", a path whose last
    part is the file's name in store, "folder" and "delimiter"; the first record of each
    file counts) into top, in the order of the files' names."""
    chosen = {}
    for record in records:
        if isinstance(record, dict) and record.get("file") and record.get("folder"):
            chosen.setdefault(os.path.basename(record["file"]), record)
    for name, record in sorted(chosen.items()):
        parts = [_encode(part) for part in _split(record["folder"], record.get("delimiter"))]
        path = top
        for part in parts[:-1]:
            parent = f"{path}/{part}"
            if not os.path.exists(parent):
                open(parent, "wb").close()
            path = f"{parent}.sbd"
            os.makedirs(path, exist_ok=True)
        link = f"{path}/{parts[-1]}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)
        os.link(os.path.join(store, name), link)


def _split(folder, delimiter):
    return folder.split(delimiter) if delimiter else [folder]


def _encode(part):
    part = part.replace("/", "%2F").replace("\0", "%00")
    return part.replace(".", "%2E") if part in (".", "..") else part
