"""The flag journal beside an mbox file: what the server said of its messages after they
were stored, until the file's own headers say it too (imapstream(7), "Flag journal").

NAME.mbox has its journal in .NAME.mbox.flags (hidden, mode 0600).  Each line is one
NDJSON object naming a message by "folder", "uidvalidity" and "uid", with either
"flags" (the message's flags and keywords now; the last such line of a message counts)
or "missing_since" (an ISO 8601 date: when the message was first seen gone from the
server; the earliest counts).  Lines are appended under the mbox file's lock and
synced; a line without its LF (a kill during the append) or that is not such an object
is ignored, so that a reader sees either the old or the new flags.  The journal is
written whole (a temporary file renamed over it) when its flags are folded into the
file (fold.py) and when deleted messages are pruned.
"""

import contextlib
import os

from ..records import orjson, positive_int

SUFFIX = ".flags"


def path_for(mbox):
    directory, name = os.path.split(mbox)
    return os.path.join(directory, f".{name}{SUFFIX}")


def key(record):
    """(folder, uidvalidity, uid) of a record, or None for one without all three."""
    folder, uidvalidity, uid = (record.get(k) for k in ("folder", "uidvalidity", "uid"))
    if isinstance(folder, str) and positive_int(uidvalidity) and positive_int(uid):
        return folder, uidvalidity, uid
    return None


class Journal:
    """The entries of a journal, {key: {"flags": [...], "missing_since": date}}, either
    part absent where no line gave it."""

    def __init__(self, entries=None):
        self.entries = entries or {}

    def __bool__(self):
        return bool(self.entries)

    def note(self, line):
        """Take one parsed line into the entries; False for one that is not an entry."""
        if not isinstance(line, dict) or (found := key(line)) is None:
            return False
        flags, since = line.get("flags"), line.get("missing_since")
        if flags is not None and not (isinstance(flags, list)
                                      and all(isinstance(f, str) for f in flags)):
            return False
        if since is not None and not isinstance(since, str) or flags is since is None:
            return False
        entry = self.entries.setdefault(found, {})
        if flags is not None:
            entry["flags"] = flags
        if since is not None:
            entry["missing_since"] = min(since, entry.get("missing_since", since))
        return True

    def apply(self, record):
        """record (a held message's) with the flags and missing_since the journal has
        for it."""
        entry = self.entries.get(key(record))
        if entry:
            record.update(entry)
        return record

    def lines(self):
        """The entries as journal lines, one per part."""
        for (folder, uidvalidity, uid), entry in self.entries.items():
            for part in ("flags", "missing_since"):
                if part in entry:
                    yield _line(folder, uidvalidity, uid, part, entry[part])


def _line(folder, uidvalidity, uid, part, value):
    return orjson().dumps({"folder": folder, "uidvalidity": uidvalidity, "uid": uid,
                           part: value}) + b"\n"


def line(record, part):
    """The journal line giving record's part ("flags" or "missing_since")."""
    return _line(*key(record), part, record[part])


def read(mbox):
    """The Journal of mbox (empty where there is none or it cannot be read)."""
    journal = Journal()
    try:
        with open(path_for(mbox), "rb") as f:
            data = f.read()
    except OSError:
        return journal
    for text in data.split(b"\n")[:-1]:  # the part after the last LF is torn
        with contextlib.suppress(ValueError):
            journal.note(orjson().loads(text))
    return journal


def append(mbox, lines):
    """Append lines (bytes, each ending in LF) to mbox's journal and sync them; the
    caller holds mbox's lock.  A torn last line left by a kill is cut off first."""
    if not lines:
        return
    fd = os.open(path_for(mbox), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            tail = os.pread(fd, min(size, 1 << 16), max(0, size - (1 << 16)))
            size -= len(tail) - (tail.rfind(b"\n") + 1)
            os.ftruncate(fd, size)
        data = b"".join(lines)
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], size + written)
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite(mbox, journal):
    """Write journal whole as mbox's journal (removed when empty); the caller holds
    mbox's lock.  A temporary file renamed over the old one: a kill leaves either."""
    import tempfile

    target = path_for(mbox)
    if not journal:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        return
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target) or ".",
                                         prefix=os.path.basename(target) + ".")
    try:
        with os.fdopen(handle, "wb") as f:
            f.writelines(journal.lines())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
