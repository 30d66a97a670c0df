"""mbox files on disk: reading (plain, .gz, .bz2, .xz), what a file holds, and
appending under a lock.  Files are created 0600 and directories 0700."""

import bz2
import fcntl
import gzip
import hashlib
import lzma
import os
from collections import Counter, defaultdict

from .cli import DataError
from .mboxrd import MboxError, parse_message
from .message import header_section, message_id

BLOCK = 4 << 20
_OPENERS = {".gz": gzip.GzipFile, ".bz2": bz2.BZ2File, ".xz": lzma.LZMAFile}


def _opener(path):
    return _OPENERS.get(os.path.splitext(path)[1])


def open_for_reading(path):
    raw = open(path, "rb")
    opener = _opener(path)
    return opener(fileobj=raw, mode="rb") if opener is gzip.GzipFile else (
        opener(raw, mode="rb") if opener else raw)


def read_texts(f, name):
    """Yield (offset, text) per stored message, text running from its From line to the
    next one.  Offsets count uncompressed bytes."""
    try:
        buf = f.read(BLOCK)
        if not buf:
            return
        if not buf.startswith(b"From "):
            raise DataError(f"{name}: not an mbox file (it does not start with \"From \")")
        base = start = search = 0
        while True:
            cut = buf.find(b"\nFrom ", search)
            if cut >= 0:
                yield base + start, buf[start:cut + 1]
                start = search = cut + 1
                continue
            more = f.read(BLOCK)
            if not more:
                yield base + start, buf[start:]
                return
            search = max(len(buf) - 5 - start, 0)
            buf, base = buf[start:] + more, base + start
            start = 0
    except (OSError, EOFError, lzma.LZMAError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise DataError(f"{name}: damaged compressed file: {exc}") from None


class TornTail(DataError):
    """The last message is cut short: a crash mid-append, or a truncated stream."""

    def __init__(self, name, offset):
        super().__init__(f"{name}: the last message (at byte {offset}) is cut short")
        self.offset = offset


def iter_messages(f, name):
    """Yield (offset, record, data) per message of an mbox stream; the record has the
    message's Message-ID.  A torn last message raises TornTail after the others."""
    pending = None
    for offset, text in read_texts(f, name):
        if pending:
            yield _parse(name, *pending)
        pending = offset, text
    if pending:
        try:
            yield _parse(name, *pending, last=True)
        except MboxError:
            raise TornTail(name, pending[0]) from None


def _parse(name, offset, text, last=False):
    try:
        record, data = parse_message(text)
    except MboxError as exc:
        if last:
            raise
        raise DataError(f"{name}: message at byte {offset}: {exc}") from None
    record["message_id"] = message_id(header_section(data))
    return offset, record, data


def scan(path, name=None):
    """iter_messages over a file, plain or compressed (an empty file holds nothing)."""
    if os.path.getsize(path) == 0:
        return
    with open_for_reading(path) as f:
        yield from iter_messages(f, name or path)


def digest(data):
    return hashlib.sha1(data, usedforsecurity=False).digest()


class Holdings:
    """What one mbox file holds.  A message is held if its UIDVALIDITY/UID pair is;
    otherwise it is matched by content against the messages of other UIDVALIDITY
    generations (all of them for a message without one), each held message matching
    at most once: by Message-ID
    and size when only a record is known, by digest when the bytes are."""

    def __init__(self, path, name=None):
        self.path, self.name = path, name or path
        self.uids = set()
        self.by_id = defaultdict(Counter)
        self.by_digest = None
        self.torn_at = None
        if os.path.exists(path):
            try:
                for _offset, record, _data in scan(path, self.name):
                    self._add(record)
            except TornTail as torn:
                self.torn_at = torn.offset

    def _add(self, record):
        uv, uid = record.get("uidvalidity"), record.get("uid")
        if uv is not None and uid is not None:
            self.uids.add((uv, uid))
        self.by_id[uv][(record.get("message_id"), record.get("size"))] += 1

    @staticmethod
    def _another_generation(generation, uv):
        return uv is None or generation != uv

    def _consume(self, table, uv, key):
        for generation, counter in table.items():
            if self._another_generation(generation, uv) and counter[key] > 0:
                counter[key] -= 1
                return True
        return False

    def _uid_held(self, record):
        uv = record.get("uidvalidity")
        return uv is not None and (uv, record.get("uid")) in self.uids

    def holds_record(self, record):
        if self._uid_held(record):
            return True
        key = (record.get("message_id"), record.get("size"))
        return self._consume(self.by_id, record.get("uidvalidity"), key)

    def holds_message(self, record, data):
        """data in LF form, as mboxrd stores it."""
        if self._uid_held(record):
            return True
        uv = record.get("uidvalidity")
        if not any(self._another_generation(generation, uv) for generation in self.by_id):
            return False
        if self.by_digest is None:
            self.by_digest = defaultdict(Counter)
            try:
                for _offset, held, held_data in scan(self.path, self.name):
                    self.by_digest[held.get("uidvalidity")][digest(held_data)] += 1
            except TornTail:
                pass
        return self._consume(self.by_digest, uv, digest(data))


class Appender:
    """Appends formatted messages to one mbox file under an exclusive flock(2), which
    it takes before the holdings are read.  A compressed file gets a new member or
    stream per Appender.  A torn tail left by a crash is cut off first (plain files)."""

    def __init__(self, path):
        self.path = path
        self.messages = self.bytes = self.largest = 0
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, mode=0o700, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
                           | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self._raw = os.fdopen(self._fd, "ab", buffering=1 << 20)
        self._out = None

    def cut_torn_tail(self, offset):
        if _opener(self.path):
            raise DataError(f"{self.path}: the last message is cut short; a compressed "
                            f"file cannot be repaired in place")
        os.ftruncate(self._fd, offset)

    def write(self, text, message_size):
        if self._out is None:
            opener = _opener(self.path)
            self._out = opener(fileobj=self._raw, mode="ab") if opener is gzip.GzipFile else (
                opener(self._raw, mode="ab") if opener else self._raw)
        self._out.write(text)
        self.messages += 1
        self.bytes += len(text)
        self.largest = max(self.largest, message_size)

    def close(self):
        try:
            if self._out is not None and self._out is not self._raw:
                self._out.close()
            self._raw.flush()
            os.fsync(self._fd)
        finally:
            self._raw.close()
