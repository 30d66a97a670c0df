"""Messages on standard input: a message stream or an mbox, told apart by the first
byte after any empty lines ("{" or "From "), either of them plain or compressed (gzip,
bzip2 or xz, told by their magic numbers)."""

import io
import zlib

from . import errors
from .mbox import compression
from .mbox.reader import iter_messages
from .mbox.scan import compression_damage
from .records import check_fields
from .stream import read_messages


def incoming_messages(stdin):
    """(record, data, lf) per message; lf tells that data is in LF form (an mbox's),
    else it is as the server sent it.  A folder checkpoint in a stream comes as
    (record, None, False).  Damaged input raises DataError after the whole
    messages before the damage."""
    gzip_members = None
    try:
        inp = io.BufferedReader(_Raw(stdin))
        if compression.suffix_of_magic(inp.peek(6)[:6]) == ".gz":
            gzip_members = GzipInput(inp)
            inp = io.BufferedReader(_Raw(gzip_members))
        inp = _decompressed(inp)
        while inp.peek(1)[:1] in (b"\n", b"\r"):
            inp.read(1)
        head = inp.peek(5)[:5]
        if head.startswith(b"{"):
            # map keeps no message it passed on: a consumer's to_lf frees the server's form
            yield from map(_as_sent, read_messages(inp))
        elif head.startswith(b"From "):
            for offset, record, data in iter_messages(inp, "standard input"):
                check_fields(record, f"standard input: message at byte {offset}")
                yield record, data, True
        elif head:
            raise errors.DataError("standard input is neither a message stream nor an mbox")
        if gzip_members is not None and gzip_members.trailer_missing:
            raise errors.DataError("standard input: the last gzip member lacks its trailer "
                                   "(its messages were read)")
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


class GzipInput:
    """The members of a gzip stream one after another (RFC 1952), each checked against
    its CRC-32 and length.  A stream that ends after the whole deflate data of its last
    member, in that member's trailer, gives all its data and sets trailer_missing, as
    gzip -dc reads it; one that ends anywhere else raises EOFError."""

    def __init__(self, inp):
        self.inp, self.inflate, self.trailer_missing = _Unread(inp), None, False
        self.crc = self.size = 0

    def read(self, size):
        while True:
            if self.inflate is None and not self._next_member():
                return b""
            if self.inflate.eof:
                self._trailer()
                continue
            chunk = self.inflate.unconsumed_tail or self.inp.read1(1 << 16)
            if not chunk:
                raise EOFError("compressed data ends inside a gzip member")
            data = self.inflate.decompress(chunk, size)
            self.crc, self.size = zlib.crc32(data, self.crc), self.size + len(data)
            if data:
                return data

    def _next_member(self):
        while self.inp.peek(1)[:1] == b"\0":  # padding after the last member
            self.inp.read(1)
        head = self.inp.read(10)
        if not head:
            return False
        if len(head) < 10 or head[:3] != b"\x1f\x8b\x08":
            raise zlib.error("not a gzip member")
        flags = head[3]
        if flags & 4:  # FEXTRA
            self.inp.read(int.from_bytes(self.inp.read(2), "little"))
        for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
            while flags & flag and self.inp.read(1) not in (b"\0", b""):
                pass
        if flags & 2:  # FHCRC
            self.inp.read(2)
        self.inflate, self.crc, self.size = zlib.decompressobj(-15), 0, 0
        return True

    def _trailer(self):
        given = self.inflate.unused_data
        self.inflate = None
        trailer = given + self.inp.read(max(8 - len(given), 0))
        expected = self.crc.to_bytes(4, "little") + (self.size & 0xFFFFFFFF).to_bytes(4, "little")
        if trailer[:8] == expected:
            self.inp.data = trailer[8:] + self.inp.data  # the next member's first bytes
            return
        if len(trailer) < 8 and expected.startswith(trailer) and not self.inp.peek(1):
            self.trailer_missing = True
            return
        raise zlib.error("a gzip member's CRC-32 or length does not match its data")


class _Unread:
    """A buffered reader with some bytes put back in front of it."""

    def __init__(self, inp):
        self.data, self.inp = b"", inp

    def read(self, size):
        if not self.data:
            return self.inp.read(size)
        data, self.data = self.data[:size], self.data[size:]
        return data + (self.inp.read(size - len(data)) if size > len(data) else b"")

    def read1(self, size):
        if not self.data:
            return self.inp.read1(size)
        data, self.data = self.data[:size], self.data[size:]
        return data

    def peek(self, size):
        return self.data or self.inp.peek(size)
