"""The sidecar index beside an mbox file: what the file holds, so that a run with
nothing new reads no message bytes, and one with a few new messages reads and writes
about as much of it as they take.

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
- a sidecar that is missing, unreadable, of another version, or whose last state line
  is damaged, is ignored: the file is scanned whole.  Rows whose segment does not
  match its SHA-1 are not used: the file's bytes up to that state's raw_end are
  scanned instead.

It also keeps the folder checkpoints mbox-merge was given (see imapstream(7)): that
every message of a folder with a UID below "uidnext" under "uidvalidity" is held.  They
count while the sidecar describes the file, so an mbox rewritten or cut back by another
program loses them and its folder is listed whole again.

Format (version 2): segments, each two lines: a JSON array of rows [offset, folder,
delimiter, uidvalidity, uid, message_id, size, flags, internaldate], one per message
held (a message from Gmail adds its gm_msgid and labels), then a state line {"imapstream-ids": 2,
"ino", "size", "mtime_ns", "raw_end", "end" (the uncompressed offset of raw_end),
"head", "tail", "count" (the rows of all segments so far), "at" (the byte offset of
this segment's rows line in the sidecar), "sha1" (of that line, without its LF),
"rows_bytes" (of all rows lines so far, LFs included), "held", "folders"}.  The last
state line describes the file; "held" sums up the UIDs of all rows: an array of
[folder, uidvalidity, first, last, first, last, ...], one per generation, the UIDs
held as ascending disjoint ranges (a generation of messages without a UID has none;
[null, null] stands for those without a UIDVALIDITY).  "folders" is an array of
[folder, delimiter, uidvalidity, uidnext] (absent: none), with the checkpoint's
highestmodseq fifth where it had one.

So an append adds one segment (its new rows, a new state) and leaves the rest; a
question about a UID reads only the last line.  The sidecar is written whole (to a
temporary file, renamed) when first made, when it is not the one read, and when its
superseded state lines outweigh its rows.  A kill during an append leaves a torn last
segment, which no reader takes for a state line; the next append cuts it off.  Version
1 (one state line first, then one array of all rows) is ignored like any other.
"""

import contextlib
import hashlib
import operator
import os

from ..records import Checkpoint, orjson, positive_int
from . import rowspans
from .uidranges import Held

VERSION = 2
WINDOW = 4096
BLOCK = 1 << 16  # bytes read from the end at first, looking for the last state line
SLACK = 1 << 16  # superseded bytes a sidecar may have beyond its rows' before a rewrite
STATE = b'{"imapstream-ids":'
KEYS = ("folder", "delimiter", "uidvalidity", "uid", "message_id", "size", "flags",
        "internaldate")
GMAIL_KEYS = ("gm_msgid", "labels")  # after KEYS in the row of a message from Gmail


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


class Base:
    """What an Index read from a sidecar knows of it: its inode, the length up to the
    end of the state line read, the count and rows' bytes of the segments so far, and
    how to get their rows (fallback() when they do not match their SHA-1)."""

    def __init__(self, path, ino, length, count, rows_bytes):
        self.path, self.ino, self.length = path, ino, length
        self.count, self.rows_bytes = count, rows_bytes
        self.fallback = list  # none: Holdings gives a scan of the file
        self._rows = self._segments = self._by_key = None

    def rows(self):
        if self._rows is None:
            self._rows = _load_rows(self)
            if self._rows is None:
                self._rows = self.fallback()
        return self._rows

    def row(self, key, delimiter):
        """The last row with key (folder, uidvalidity, uid) and delimiter, or None: while
        the rows are not read, found by its bytes in the checked segments (rowspans.py),
        so that a few lookups cost no more than a few searches; else by key among them."""
        if self._rows is None:
            for line, _state in reversed(self.segments()):
                found = rowspans.find(line, key, delimiter)
                if found is not None and len(found[2]) in ROW_LENGTHS:
                    return found[2]
        if self._by_key is None:
            rows = self.rows()
            self._by_key = dict(zip(map(row_key, rows), rows, strict=True))
        return self._by_key.get(key)

    def segments(self):
        """[(line of rows, state)] of the sidecar's segments, checked (see _segments), or
        () where they do not check."""
        if self._segments is None:
            try:
                self._segments = _segments(self) or ()
            except (OSError, ValueError, KeyError, TypeError):
                self._segments = ()
        return self._segments


class Index:
    """Rows up to raw_end (the uncompressed offset end) of the file with stat st, the
    UIDs they hold, and the folder checkpoints, {folder: records.Checkpoint}.  The rows
    are those of base (read from the sidecar when first asked for) and then new_rows."""

    def __init__(self, st, raw_end, end, new_rows, head=None, tail=None, folders=None,
                 base=None, held=None):
        self.st, self.raw_end, self.end = st, raw_end, end
        self.head, self.tail = head, tail
        self.folders = folders or {}
        self.base, self.new_rows = base, new_rows
        self._new_by_key = None
        if held is None:
            held = Held()
            for row in new_rows:
                held.add(record(row))
        self.held = held

    @classmethod
    def of(cls, fd, st, raw_end, end, rows, folders=None):
        """An Index of the file open as fd, whose windows are read now."""
        return cls(st, raw_end, end, rows, *windows(fd, raw_end), folders=folders)

    def grown(self, fd, st, raw_end, end, rows, folders):
        """This index with rows added, of the file open as fd, now with stat st."""
        held = self.held.copy()
        for row in rows:
            held.add(record(row))
        return Index(st, raw_end, end, self.new_rows + rows, *windows(fd, raw_end),
                     folders=folders, base=self.base, held=held)

    @property
    def rows(self):
        return (self.base.rows() if self.base else []) + self.new_rows

    def row(self, key, delimiter):
        """The last row with key (folder, uidvalidity, uid), or None (see Base.row)."""
        if self._new_by_key is None:
            self._new_by_key = dict(zip(map(row_key, self.new_rows), self.new_rows,
                                        strict=True))
        found = self._new_by_key.get(key)
        return found if found is not None or self.base is None else self.base.row(
            key, delimiter)

    @property
    def count(self):
        return (self.base.count if self.base else 0) + len(self.new_rows)

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


FLAGS = 1 + KEYS.index("flags")  # where a row has its flags
ROW_LENGTHS = {1 + len(KEYS), 1 + len(KEYS) + len(GMAIL_KEYS)}


# (folder, uidvalidity, uid) of a row: flagjournal.key of its record where it has all
# three (a key with a None is no journal's)
row_key = operator.itemgetter(1, 3, 4)


def row(offset, record):
    """A message's row; one from Gmail ends in its "gm_msgid" and "labels" too."""
    gmail = [record["gm_msgid"], record.get("labels")] if record.get("gm_msgid") else []
    return [offset, *(record.get(key) for key in KEYS), *gmail]


def record(row):
    held = dict(zip(KEYS, row[1:len(KEYS) + 1], strict=True))
    if len(row) > len(KEYS) + 1:
        held.update(zip(GMAIL_KEYS, row[len(KEYS) + 1:], strict=True))
    return held


def load(mbox):
    """The Index in the sidecar of mbox (its rows read when first asked for), or None if
    there is none worth trusting."""
    try:
        with open(path_for(mbox), "rb") as f:
            found = last_state(f.fileno())
            if found is None:
                return None
            state, length = found
            return _from_state(state, Base(path_for(mbox), os.fstat(f.fileno()).st_ino,
                                           length, state["count"], state["rows_bytes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def checkpoints(mbox):
    """The folder checkpoints of mbox's sidecar while it describes the file (its last
    state line alone is read), else {}."""
    index = load(mbox)
    try:
        with open(mbox, "rb") as raw:
            if index is not None and index.describes(raw.fileno(), os.fstat(raw.fileno())):
                return index.folders
    except OSError:
        pass
    return {}


def last_state(fd):
    """(the last state line, parsed, and the offset just after it) of a sidecar; None
    if that line is not one of this version.  A torn segment after it is passed over:
    no line of rows starts with STATE, and a state line is a state once its LF is
    written."""
    size = os.fstat(fd).st_size
    block = BLOCK
    while True:
        start = max(0, size - block)
        data = os.pread(fd, size - start, start)
        end = len(data)
        while (at := data.rfind(STATE, 0, end)) >= 0:
            end = at
            if at == 0 and start > 0 or at > 0 and data[at - 1:at] != b"\n":
                continue
            line_end = data.find(b"\n", at)
            if line_end < 0:
                continue  # a torn state line
            state = orjson().loads(data[at:line_end])
            if state.get("imapstream-ids") != VERSION or state["at"] >= start + at:
                return None
            return state, start + line_end + 1
        if start == 0:
            return None
        block *= 4


def _from_state(state, base):
    """An Index of a state line (bad values raise ValueError, KeyError or TypeError)."""
    folders = {}
    for entry in state.get("folders", ()):
        folder, delimiter, uidvalidity, uidnext, *modseq = entry
        if not (isinstance(folder, str) and isinstance(delimiter, str | None)
                and positive_int(uidvalidity) and positive_int(uidnext)
                and len(modseq) < 2 and all(map(positive_int, modseq))):
            raise ValueError("bad folder checkpoint")
        folders[folder] = Checkpoint(folder, delimiter, uidvalidity, uidnext,
                                     highestmodseq=modseq[0] if modseq else None)
    for key in ("ino", "size", "mtime_ns", "raw_end", "end", "count", "at", "rows_bytes"):
        if not isinstance(state[key], int) or state[key] < 0:
            raise ValueError(f"bad {key}")
    return Index(_Stat(state["ino"], state["size"], state["mtime_ns"]), state["raw_end"],
                 state["end"], [], state["head"], state["tail"], folders, base,
                 Held.from_json(state["held"]))


def _load_rows(base):
    """The rows of every segment of base's sidecar up to base.length, or None if the
    sidecar is no longer the one read or a segment does not check."""
    try:
        segments = _segments(base)
        if segments is None:
            return None
        rows = []
        for line, state in segments:
            segment = orjson().loads(line)
            rows += segment
            if (state["count"] != len(rows) or not set(map(type, segment)) <= {list}
                    or not set(map(len, segment)) <= ROW_LENGTHS):
                return None
        return rows if len(rows) == base.count else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _segments(base):
    """[(line of rows, state)] of each segment of base's sidecar up to base.length, each
    checked against its state line (version, place, SHA-1, bytes so far); None if the
    sidecar is no longer the one read or a segment does not check."""
    with open(base.path, "rb") as f:
        if os.fstat(f.fileno()).st_ino != base.ino:
            return None
        data = f.read(base.length)
    segments, at, rows_bytes = [], 0, 0
    while at < len(data):
        rows_end = data.index(b"\n", at)
        state_end = data.index(b"\n", rows_end + 1)
        state = orjson().loads(data[rows_end + 1:state_end])
        line = data[at:rows_end]
        rows_bytes += len(line) + 1
        if (state["imapstream-ids"] != VERSION or state["at"] != at
                or state["sha1"] != hashlib.sha1(line, usedforsecurity=False).hexdigest()
                or state["rows_bytes"] != rows_bytes):
            return None
        segments.append((line, state))
        at = state_end + 1
    return segments if at == base.length else None


def _state(index, held, count, at, line, rows_bytes):
    state = {"imapstream-ids": VERSION, "ino": index.st.st_ino, "size": index.st.st_size,
             "mtime_ns": index.st.st_mtime_ns, "raw_end": index.raw_end, "end": index.end,
             "head": index.head, "tail": index.tail, "count": count, "at": at,
             "sha1": hashlib.sha1(line, usedforsecurity=False).hexdigest(),
             "rows_bytes": rows_bytes, "held": held.to_json()}
    if index.folders:
        state["folders"] = [[c.folder, c.delimiter, c.uidvalidity, c.uidnext,
                              *([c.highestmodseq] if c.highestmodseq else [])]
                             for c in index.folders.values()]
    return orjson().dumps(state) + b"\n"


def save(mbox, index):
    """Write index as the sidecar of mbox: one segment appended to the sidecar it was
    read from, or a new sidecar renamed into place.  A failure (a read-only directory,
    a full disk) only leaves the old sidecar, a torn segment after it, or none."""
    base = index.base
    if base is not None:
        line = orjson().dumps(index.new_rows)
        rows_bytes = base.rows_bytes + len(line) + 1
        if base.length + len(line) - rows_bytes <= rows_bytes + SLACK:
            state = _state(index, index.held, index.count, base.length, line, rows_bytes)
            with contextlib.suppress(OSError):
                if _append(base, line + b"\n" + state):
                    return
    rows = index.rows
    held = index.held  # an index of rows alone (base None) holds their UIDs alone
    if base is not None:
        held = Held()
        for each in rows:
            held.add(record(each))
    line = orjson().dumps(rows)
    _replace(path_for(mbox), line + b"\n" + _state(index, held, len(rows), 0, line,
                                                    len(line) + 1))


def save_joined(mbox, fd, index, lines, replaced, folders):
    """Write the sidecar of mbox, open as fd, anew as one segment of the rows of lines
    (its index's base.segments()), those at replaced {(segment, start, end): row}
    replaced (rowspans.joined), with folders: as save() writes those rows, none read."""
    line = rowspans.joined(lines, replaced)
    st = os.fstat(fd)
    new = Index(st, st.st_size, st.st_size, [], *windows(fd, st.st_size), folders=folders,
                held=index.held)
    _replace(path_for(mbox), line + b"\n" + _state(new, index.held, index.count, 0, line,
                                                   len(line) + 1))


def _append(base, segment):
    """Append segment to base's sidecar, cut back to what was read; False if the
    sidecar is no longer that one."""
    fd = os.open(base.path, os.O_RDWR)
    try:
        st = os.fstat(fd)
        if st.st_ino != base.ino or st.st_size < base.length:
            return False
        os.ftruncate(fd, base.length)
        if os.pwrite(fd, segment, base.length) < len(segment):
            raise OSError("short write")
        return True
    finally:
        os.close(fd)


def _replace(target, data):
    import tempfile  # here: it loads shutil and random, start-up time for every reader

    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target) or ".",
                                             prefix=os.path.basename(target) + ".")
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, target)
    except OSError:
        if temporary:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
