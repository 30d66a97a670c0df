"""NDJSON records: one JSON object per line, UTF-8, flushed per record.  Readers report
the line number of a malformed line; consumers ignore keys they do not know.  A known
key with a value of another type than imapstream(7) gives it (FIELDS) is malformed."""

import functools
import os
import re
import select
from datetime import UTC, datetime
from typing import NamedTuple

from .errors import DataError


@functools.cache
def orjson():
    """The orjson module, imported at the first record: loading it (with the uuid,
    dataclasses and json modules it loads) costs a command ~25 ms of start-up, which
    one with no input to read never pays."""
    import orjson

    return orjson


def dumps(record):
    return orjson().dumps(record)


def write_record(out, record):
    out.write(dumps(record) + b"\n")
    out.flush()


def parse_record(line, lineno):
    json = orjson()
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"line {lineno}: not a JSON object: {exc}") from None
    if not isinstance(record, dict):
        raise DataError(f"line {lineno}: not a JSON object")
    check_fields(record, f"line {lineno}")
    return record


def check_fields(record, where):
    """Refuse a record with a known key whose value is not what FIELDS says (null stands
    for an unknown value of any of them)."""
    for key, value in record.items():
        field = FIELDS.get(key)
        if field is not None and value is not None and not field[0](value):
            raise DataError(f"{where}: \"{key}\" must be {field[1]} or null")


def positive_int(value):
    """Whether value is a JSON integer above 0 (not a boolean, which Python counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value):
    """An IMAP nz-number: UIDs, UIDVALIDITY and UIDNEXT are 32-bit (RFC 3501, 9)."""
    return positive_int(value) and value < 1 << 32


_NOT_IN_FLAG = re.compile(r"[\x00-\x20\x7f]")  # SP and CTL: atom-specials (RFC 3501, 9)


def _modseq(value):
    """A mod-sequence: 63 bits (RFC 7162, 7)."""
    return positive_int(value) and value < 1 << 63


def _update(value):
    return value in UPDATES


def _flags(value):
    return isinstance(value, list) and all(
        isinstance(flag, str) and flag and not _NOT_IN_FLAG.search(flag) for flag in value)


def _date(value):
    """ISO 8601 with or without a UTC offset (without: UTC), an instant in UTC."""
    try:
        when = datetime.fromisoformat(value)
        (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _string(value):
    return isinstance(value, str)


def _boolean(value):
    return isinstance(value, bool)


def _digits(value):
    """Gmail's 64-bit ids, as decimal strings."""
    return isinstance(value, str) and value.isascii() and value.isdigit()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _labels(value):
    return isinstance(value, list) and all(
        isinstance(label, str) and label and not _CONTROL.search(label) for label in value)


# The keys of the records of imapstream(7) (folder, message, checkpoint and held records,
# and the message stream's "length"): a test of the value and what it must be.
FIELDS = {
    "folder": (_string, "a string"),
    "delimiter": (_string, "a string"),
    "flags": (_flags, "an array of flags (strings without spaces or control characters)"),
    "special_use": (_string, "a string"),
    "noselect": (_boolean, "a boolean"),
    "messages": (_count, "an integer from 0"),
    "uidvalidity": (_number, "an integer from 1 to 2^32-1"),
    "uidnext": (_number, "an integer from 1 to 2^32-1"),
    "uid": (_number, "an integer from 1 to 2^32-1"),
    "since": (_number, "an integer from 1 to 2^32-1"),
    "message_id": (_string, "a string"),
    "size": (_count, "an integer from 0"),
    "internaldate": (_date, "an ISO 8601 date"),
    "checkpoint": (_boolean, "a boolean"),
    "failed": (_boolean, "a boolean"),
    "length": (_count, "an integer from 0"),
    "file": (_string, "a string"),
    "not_held_in": (_string, "a string"),
    "offset": (_count, "an integer from 0"),
    "modseq": (_modseq, "an integer from 1 to 2^63-1"),
    "highestmodseq": (_modseq, "an integer from 1 to 2^63-1"),
    "update": (_update, "\"flags\" or \"vanished\""),
    "missing_since": (_date, "an ISO 8601 date"),
    "gm_msgid": (_digits, "a string of decimal digits"),
    "gm_thrid": (_digits, "a string of decimal digits"),
    "copy_of": (_digits, "a string of decimal digits"),
    "labels": (_labels, "an array of labels (non-empty strings without control characters)"),
}
UPDATES = ("flags", "vanished")  # the kinds of update record


def is_update(record):
    """Whether record is an update record (imapstream(7)): the flags a held message has
    now, or that it is gone from the server."""
    return record.get("update") in UPDATES


def is_announce(record):
    """Whether record is a folder announcement (imap-list --announce, imapstream(7)):
    messages the backup lacks are coming from that folder."""
    return record.get("announce") is True


def read_lines(inp, idle=None):
    """Yield (lineno, line) for each non-empty line of a binary stream, lines counted
    from 1 (empty ones too); idle(), if given, is called whenever the next line has not
    arrived yet.  Each line is read when asked for, so that a caller may read the bytes
    that follow a line itself (the message stream)."""
    for lineno, line in enumerate(_lines(inp, idle), 1):
        if line.strip():
            yield lineno, line


def read_records(inp, idle=None):
    """Yield (lineno, record) for each non-empty line of a binary stream (read_lines)."""
    _load_while_waiting(inp)
    for lineno, line in read_lines(inp, idle):
        yield lineno, parse_record(line, lineno)


class Checkpoint(NamedTuple):
    """A folder checkpoint (imapstream(7)): while the folder's UIDVALIDITY is
    uidvalidity, every message with a UID below uidnext (from since on, if set) came
    before it in a listing or stream, or is held by a backup (a sidecar's).  vouches is
    the record's "checkpoint"; messages, how many the folder had; highestmodseq, the
    folder's HIGHESTMODSEQ (RFC 7162) when the listing began, where every change of
    flags and every expunge up to it came before too."""

    folder: str
    delimiter: str | None
    uidvalidity: int | None
    uidnext: int | None
    messages: int | None = None
    since: int | None = None
    highestmodseq: int | None = None
    vouches: bool = True

    @classmethod
    def of(cls, record, lineno=None):
        """The checkpoint a record is (one with "checkpoint" and no "uid"), its fields
        checked; None for any other record.  One that vouches for its folder needs
        positive integers "uidvalidity" and "uidnext"."""
        if "checkpoint" not in record or "uid" in record:
            return None
        where = f"line {lineno}: " if lineno else ""
        folder = record.get("folder")
        if not isinstance(folder, str):
            raise DataError(f"{where}folder checkpoint without a \"folder\" string")
        checkpoint = cls(folder, *(record.get(key) for key in cls._fields[1:-1]),
                         vouches=record["checkpoint"] is True)
        if checkpoint.vouches and not (positive_int(checkpoint.uidvalidity)
                                       and positive_int(checkpoint.uidnext)):
            raise DataError(f"{where}folder checkpoint without positive integers "
                            f"\"uidvalidity\" and \"uidnext\"")
        return checkpoint

    def record(self):
        modseq = {} if self.highestmodseq is None else {"highestmodseq": self.highestmodseq}
        return {"folder": self.folder, "delimiter": self.delimiter,
                "uidvalidity": self.uidvalidity, "uidnext": self.uidnext,
                "messages": self.messages, "since": self.since, **modseq,
                "checkpoint": self.vouches}

    def says_more(self):
        """Whether it vouches for more than the listing it closes began with: not a
        folder with nothing new (since == uidnext) and no HIGHESTMODSEQ (imap-list
        leaves it out where it, too, is what the listing began with)."""
        return self.vouches and (self.since != self.uidnext or self.highestmodseq is not None)


def withdraw(record):
    """Make a checkpoint record vouch for nothing, where a message of its folder did not
    go on before it, and say that the folder failed (see imapstream(7)); other keys pass
    on as they were."""
    record["checkpoint"] = False
    record["failed"] = True
    return record


def message_key(record, lineno):
    """Check the fields every message record must have; return (folder, uid)."""
    folder, uid = record.get("folder"), record.get("uid")
    if not isinstance(folder, str):
        raise DataError(f"line {lineno}: message record without a \"folder\" string")
    if not positive_int(uid):
        raise DataError(f"line {lineno}: message record without a positive integer \"uid\"")
    uidvalidity = record.get("uidvalidity")
    if uidvalidity is not None and not positive_int(uidvalidity):
        raise DataError(f"line {lineno}: \"uidvalidity\" must be a positive integer")
    return folder, uid


def _load_while_waiting(inp):
    """Load orjson now where the input (a pipe) has no byte to read yet: the wait for the
    first line hides the time that takes, which a command downstream in a pipeline would
    otherwise spend once the line has come.  Input there at once (a file, or none at
    all) loads it at its first record, or never."""
    try:
        fd = inp.fileno()
    except (AttributeError, OSError, ValueError):
        return
    if not select.select([fd], [], [], 0)[0]:
        orjson()


def _lines(inp, idle):
    try:
        fd = inp.fileno() if idle else None
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is None:
        yield from inp
        return
    pending = b""
    while True:
        if not select.select([fd], [], [], 0)[0]:
            idle()
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line + b"\n"
    if pending:
        yield pending
