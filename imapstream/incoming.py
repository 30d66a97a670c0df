"""Messages on standard input: a message stream or an mbox, told apart by the first
byte after any empty lines ("{" or "From "), either of them plain or compressed (gzip,
bzip2 or xz, told by their magic numbers)."""

import io

from . import errors
from .mbox import compression
from .mbox.reader import iter_messages
from .mbox.scan import compression_damage
from .stream import read_messages


def incoming_messages(stdin):
    """(record, data, lf) per message; lf tells that data is in LF form (an mbox's),
    else it is as the server sent it.  A folder checkpoint in a stream comes as
    (record, None, False).  Damaged input raises DataError after the whole
    messages before the damage."""
    try:
        inp = io.BufferedReader(_Raw(stdin))
        inp = _decompressed(inp)
        while inp.peek(1)[:1] in (b"\n", b"\r"):
            inp.read(1)
        head = inp.peek(5)[:5]
        if head.startswith(b"{"):
            # map keeps no message it passed on: a consumer's to_lf frees the server's form
            yield from map(_as_sent, read_messages(inp))
        elif head.startswith(b"From "):
            for _offset, record, data in iter_messages(inp, "standard input"):
                yield record, data, True
        elif head:
            raise errors.DataError("standard input is neither a message stream nor an mbox")
    except Exception as exc:
        if not compression_damage(exc):
            raise
        raise errors.DataError(f"standard input: damaged compressed data: {exc}") from None


def _as_sent(message):
    record, data = message
    return record, data, False


def _decompressed(inp):
    suffix = compression.suffix_of_magic(inp.peek(6)[:6])
    return io.BufferedReader(_Raw(compression.reading(inp, suffix))) if suffix else inp


class _Raw(io.RawIOBase):
    """Any object with read() as a raw stream, so that BufferedReader can peek at it."""

    def __init__(self, source):
        self.source = source

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = getattr(self.source, "read1", self.source.read)(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)
