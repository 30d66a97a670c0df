"""NDJSON records: one JSON object per line, UTF-8, flushed per record.  Readers report
the line number of a malformed line; consumers ignore keys they do not know."""

import functools
import os
import select

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
    return record


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
    for lineno, line in read_lines(inp, idle):
        yield lineno, parse_record(line, lineno)


def positive_int(value):
    """Whether value is a JSON integer above 0 (not a boolean, which Python counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def checkpoint_key(record, lineno):
    """For a folder checkpoint (a record with "checkpoint" and no "uid"), check its fields
    and return its folder; None for any other record.  A checkpoint that vouches for its
    folder ("checkpoint": true) needs positive integers "uidvalidity" and "uidnext"."""
    if "checkpoint" not in record or "uid" in record:
        return None
    folder = record.get("folder")
    if not isinstance(folder, str):
        raise DataError(f"line {lineno}: folder checkpoint without a \"folder\" string")
    if record["checkpoint"] is True and not (positive_int(record.get("uidvalidity"))
                                             and positive_int(record.get("uidnext"))):
        raise DataError(f"line {lineno}: folder checkpoint without positive integers "
                        f"\"uidvalidity\" and \"uidnext\"")
    return folder


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
