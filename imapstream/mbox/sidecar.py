"""The sidecar index beside an mbox file: what the file holds, so that a run with
nothing new reads no message bytes.

NAME.mbox has its sidecar in .NAME.mbox.ids (hidden, mode 0600, never an mbox file
name).  It holds the held records of the file's first bytes (up to raw_end, a message
boundary: all of a plain file but a torn tail, all of a compressed one) and what those
bytes were: the file's inode, the SHA-1 of their first and last 4 KiB, and the size and
mtime the file had.  It is a cache, never trusted over the mbox:

- it counts only while the file's two windows still hash the same, and the file has
  the size and mtime it had (a copy made with cp -a or rsync -a qualifies), or is the
  same inode grown or cut back to no less than raw_end (appends, a torn tail cut off);
  not for a file of the same size with another mtime (a rewrite in place).  The bytes
  after raw_end are scanned as usual, so a file that only grew costs its new tail;
- a sidecar that is missing, unreadable, of another version, or whose records do not
  match their SHA-1, is ignored: the file is scanned whole;
- it is written to a temporary file and renamed, so a kill leaves the old one or the
  new one; a stale one describes bytes the file still has, or fails the checks above.

It also keeps the folder checkpoints mbox-merge was given (see imapstream(7)): that
every message of a folder with a UID below "uidnext" under "uidvalidity" is held.  They
count while the sidecar describes the file, so an mbox rewritten or cut back by another
program loses them and its folder is listed whole again.

Format: one JSON line {"imapstream-ids": 1, "ino", "size", "mtime_ns", "raw_end",
"end" (the uncompressed offset of raw_end), "head", "tail", "count", "sha1", "folders"
(an array of [folder, delimiter, uidvalidity, uidnext]; absent means none)}, then one
JSON array of rows [offset, folder, delimiter, uidvalidity, uid, message_id, size,
flags, internaldate], one per held message.
"""

import contextlib
import hashlib
import os

from ..records import Checkpoint, orjson, positive_int

VERSION = 1
WINDOW = 4096
KEYS = ("folder", "delimiter", "uidvalidity", "uid", "message_id", "size", "flags",
        "internaldate")


def path_for(mbox):
    directory, name = os.path.split(mbox)
    return os.path.join(directory, f".{name}.ids")


def windows(fd, raw_end):
    """SHA-1 (hex) of the first and of the last WINDOW bytes before raw_end."""
    head = os.pread(fd, min(WINDOW, raw_end), 0)
    tail_start = max(0, raw_end - WINDOW)
    tail = os.pread(fd, raw_end - tail_start, tail_start)
    return (hashlib.sha1(head, usedforsecurity=False).hexdigest(),
            hashlib.sha1(tail, usedforsecurity=False).hexdigest())


class Index:
    """Rows up to raw_end (the uncompressed offset end) of the file with stat st, and
    the folder checkpoints, {folder: records.Checkpoint}."""

    def __init__(self, st, raw_end, end, rows, head=None, tail=None, folders=None):
        self.st, self.raw_end, self.end, self.rows = st, raw_end, end, rows
        self.head, self.tail = head, tail
        self.folders = folders or {}

    @classmethod
    def of(cls, fd, st, raw_end, end, rows, folders=None):
        """An Index of the file open as fd, whose windows are read now."""
        return cls(st, raw_end, end, rows, *windows(fd, raw_end), folders=folders)

    def describes(self, fd, st):
        """Whether the file open as fd, with stat st, still has the bytes this index
        describes (see the module docstring)."""
        if self.st is None or st.st_size < self.raw_end:
            return False
        unchanged = (st.st_size, st.st_mtime_ns) == (self.st.st_size, self.st.st_mtime_ns)
        if not unchanged and (st.st_ino != self.st.st_ino or st.st_size == self.st.st_size):
            return False
        return (self.head, self.tail) == windows(fd, self.raw_end)


class _Stat:
    def __init__(self, ino, size, mtime_ns):
        self.st_ino, self.st_size, self.st_mtime_ns = ino, size, mtime_ns


def row(offset, record):
    return [offset, *(record.get(key) for key in KEYS)]


def record(row):
    return dict(zip(KEYS, row[1:], strict=True))


def load(mbox):
    """The Index in the sidecar of mbox, or None if there is none worth trusting."""
    try:
        with open(path_for(mbox), "rb") as f:
            line = f.readline()
            body = f.read()
        index, count, sha1 = _from_header(line)
        if index is None or hashlib.sha1(body, usedforsecurity=False).hexdigest() != sha1:
            return None
        rows = orjson().loads(body)
        if not isinstance(rows, list) or len(rows) != count:
            return None
        index.rows = rows
        return index
    except (OSError, ValueError, KeyError, TypeError):
        return None


def checkpoints(mbox):
    """The folder checkpoints of mbox's sidecar while it describes the file (its first
    line alone is read), else {}."""
    try:
        with open(path_for(mbox), "rb") as f:
            index, _count, _sha1 = _from_header(f.readline())
        if index is None:
            return {}
        with open(mbox, "rb") as raw:
            return index.folders if index.describes(raw.fileno(), os.fstat(raw.fileno())) \
                else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _from_header(line):
    """(an Index without rows, the count and SHA-1 of its rows) from a sidecar's first
    line; (None, None, None) for another version.  Bad values raise ValueError,
    KeyError or TypeError."""
    header = orjson().loads(line)
    if not isinstance(header, dict) or header.get("imapstream-ids") != VERSION:
        return None, None, None
    folders = {}
    for entry in header.get("folders", ()):
        folder, delimiter, uidvalidity, uidnext = entry
        if not (isinstance(folder, str) and isinstance(delimiter, str | None)
                and positive_int(uidvalidity) and positive_int(uidnext)):
            raise ValueError("bad folder checkpoint")
        folders[folder] = Checkpoint(folder, delimiter, uidvalidity, uidnext)
    st = _Stat(header["ino"], header["size"], header["mtime_ns"])
    index = Index(st, header["raw_end"], header["end"], [], header["head"], header["tail"],
                  folders)
    return index, header["count"], header["sha1"]




def save(mbox, index):
    """Write index as the sidecar of mbox, atomically; a failure (a read-only
    directory, a full disk) only leaves the old sidecar, or none."""
    body = orjson().dumps(index.rows)
    header = {"imapstream-ids": VERSION, "ino": index.st.st_ino, "size": index.st.st_size,
              "mtime_ns": index.st.st_mtime_ns, "raw_end": index.raw_end, "end": index.end,
              "head": index.head, "tail": index.tail, "count": len(index.rows),
              "sha1": hashlib.sha1(body, usedforsecurity=False).hexdigest()}
    if index.folders:
        header["folders"] = [[c.folder, c.delimiter, c.uidvalidity, c.uidnext]
                             for c in index.folders.values()]
    import tempfile  # here: it loads shutil and random, start-up time for every reader

    target = path_for(mbox)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target) or ".",
                                             prefix=os.path.basename(target) + ".")
        with os.fdopen(handle, "wb") as f:
            f.write(orjson().dumps(header) + b"\n" + body)
        os.replace(temporary, target)
    except OSError:
        if temporary:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
