"""The message stream: for each message, its record as one NDJSON line whose "length"
is the exact number of raw bytes that follow, then those bytes as the server sent them,
then one LF.  Lossless, no quoting, framed by counting (after git cat-file --batch).
A folder checkpoint (records.Checkpoint) is its record line alone, and so are an update
record (records.is_update) and a record with "copy_of" (a message from Gmail whose
bytes a backup holds already)."""

import itertools

from .errors import DataError
from .records import Checkpoint, dumps, is_update, parse_record, read_lines


def write_message(out, record, data):
    header = dict(record)
    header["length"] = len(data)
    out.write(dumps(header) + b"\n")
    out.write(data)
    out.write(b"\n")
    out.flush()


def read_messages(inp, first_line=None):
    """Yield (record, data) per framed message, and (record, None) per folder checkpoint
    and update record.
    A truncated or misframed stream raises DataError after the last complete message, so
    no partial message is ever yielded."""
    lines = inp if first_line is None else itertools.chain([first_line], inp)
    for lineno, line in read_lines(lines):
        yield _read_message(inp, line, lineno)  # not kept here while the consumer has it


def _read_message(inp, line, lineno):
    record = parse_record(line, lineno)
    if Checkpoint.of(record, lineno) is not None or is_update(record) or "copy_of" in record:
        return record, None
    length = record.get("length")
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise DataError(f"message {lineno}: record without a non-negative \"length\"")
    data = _read_exactly(inp, length)
    if len(data) < length or inp.read(1) != b"\n":
        raise DataError(f"message {lineno}: truncated message stream "
                        f"({len(data)} of {length} bytes)")
    return record, data


PIECE = 1 << 20  # read at a time: a length that lies costs no more than the bytes sent


def _read_exactly(inp, length):
    parts, wanted = [], length
    while wanted:
        part = inp.read(min(wanted, PIECE))
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return b"".join(parts)
