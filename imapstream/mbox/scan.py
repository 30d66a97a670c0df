"""Reading mbox files fast.  A Window holds a file's bytes from some offset on in one
reused buffer, where bytes.find looks for the next From line; a plain file is read at
any offset with os.preadv, so the data of a message that held_head measures need not
be read; compressed files through compression.py.  Offsets count uncompressed bytes."""

import contextlib
import os
import stat
import sys
import zlib

from ..errors import DataError
from . import compression
from .mboxrd import MboxError, held_ends, held_head, parse_held, quoted_until_from

BLOCK = 256 << 10  # read at least this much at a time: holds most messages' header
SEPARATOR = b"\nFrom "
NEXT = b"\n" + SEPARATOR  # what follows a message of ours that ends where it can


class TornTail(DataError):
    """The last message is cut short: a crash mid-append, or a truncated stream."""

    def __init__(self, name, offset):
        super().__init__(f"{name}: the last message (at byte {offset}) is cut short")
        self.offset = offset


class CutStream(DataError):
    """A compressed file whose last member or stream ends early: a crash mid-append."""

    def __init__(self, name):
        super().__init__(f"{name}: the last compressed stream is cut short")


def spans(f, name, base=0):
    """Yield (buffer, start, end, offset, last) per stored message, buffer[start:end]
    running from its From line to the next one; offset is where it starts in the
    uncompressed file (base for the first).  last marks what the file ends with, where a
    message that does not parse is a torn tail: the last span and, when the file ends in
    a From line cut short after 1 to 4 bytes ("\\nFro", a crash at the start of an
    append), also the span before that piece, which is a span of its own.  The buffer is
    reused: copy what you keep.  f needs read(n), or readinto(buffer)."""
    with _reading(name):
        window, offset = Window(f, base), base
        index = _first(window, offset, name)
        while index < window.filled:
            end, last = window.span(offset)
            yield window.buf, offset - window.base, end - window.base, offset, last
            offset = end
            index = window.hold(offset, offset + 1)


class HeldScan:
    """(offset, record) per message of a file from a raw offset on, records as
    mboxrd.parse_held gives them.  Once iterated: end is the uncompressed offset after
    the last whole message, and torn_at the offset of a torn last message (or None).

    A message of ours whose least end (held_head) is followed by an empty line and a
    From line ends there: its data is not read.  This trusts octets: a message as long
    as that only because octets counts its quoted lines, and one more LF where its data
    does not end in one (a damaged length), or because
    it is torn and another program appended after it, is taken as whole; at the end of
    the file nothing is trusted.  Another message of ours has its lines read once for
    quoted lines and the next From line (held_ends); any message that fails that, and
    a foreign one, is held whole and parsed by parse_held, so that every error is the
    one that reading from From line to From line gives.  A message of ours that cannot
    be matched to what was stored (see mboxrd.parse_message) is listed in unmatched."""

    def __init__(self, raw, suffix, name, raw_start=0, base=0):
        self.raw, self.suffix, self.name = raw, suffix, name
        self.raw_start, self.end, self.torn_at = raw_start, base, None
        self.unmatched = []  # (offset, reason) per message of ours read as a foreign one

    def __iter__(self):
        self.raw.seek(self.raw_start)
        fd = None if self.suffix else _regular_fd(self.raw)
        with _reading(self.name):
            window = Window(compression.reading(self.raw, self.suffix), self.end, fd)
            offset = self.end
            index = _first(window, offset, self.name)
            while index < window.filled:
                held, end = held_head(window.buf, index, window.filled), None
                if held:
                    record, pos, least = held[0], window.base + held[1], window.base + held[2]
                    if window.peek(offset, least - 2, len(NEXT)) == NEXT:
                        end = least
                    else:
                        end = self._counted(window, offset, pos, least)
                if end is None:
                    end, record = self._whole(window, offset)
                self.end = end
                yield offset, record
                offset = end
                index = window.hold(offset, offset + BLOCK)

    def _whole(self, window, offset):
        """(end, record) of the message at offset, held whole and parsed by parse_held."""
        end, last = window.span(offset)
        try:
            record = parse_held(window.buf, offset - window.base, end - window.base, last)
        except MboxError as exc:
            if last:
                self.torn_at = offset
                raise TornTail(self.name, offset) from None
            raise DataError(f"{self.name}: message at byte {offset}: {exc}") from None
        if "unmatched" in record:
            self.unmatched.append((offset, record.pop("unmatched")))
        return end, record

    @staticmethod
    def _counted(window, offset, pos, least):
        """The end of the message of ours at offset, whose data begins at pos and which
        held_head measured, its lines read once for quoted lines and the next From line:
        in a plain file piece by piece.  None where it does not end well (the last
        message of a file, too), as parse_held would find."""
        done, quoted = pos, 0
        while True:
            base, buf = window.base, window.buf
            lines = buf.rfind(b"\n", done - base, window.filled) + 1  # whole lines only
            if lines > done - base:
                more, found = quoted_until_from(buf, done - base, lines)
                quoted += more
                if found >= 0:
                    return base + found if held_ends(buf, found, least - base, quoted) \
                        else None
                done = base + lines
            if window.ended:
                return None
            # held_ends looks at the 3 bytes before the end; a stream is not read again
            window.hold(offset if window.fd is None else done - 3,
                        base + window.filled + BLOCK)


def _regular_fd(raw):
    """raw's file descriptor if it is a regular file (then read at any offset), or None."""
    try:
        fd = raw.fileno()
    except (AttributeError, OSError):
        return None
    return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None


@contextlib.contextmanager
def _reading(name):
    """A decompressor's complaint as DataError, a stream cut short as CutStream."""
    try:
        yield
    except EOFError:
        raise CutStream(name) from None
    except Exception as exc:
        if not compression_damage(exc):
            raise
        raise DataError(f"{name}: damaged compressed file: {exc}") from None


def _first(window, offset, name):
    """Hold the head of the first message, at offset, which must begin with "From " (or
    a part of it: a file shorter than that may be a torn first From line)."""
    index = window.hold(offset, offset + BLOCK)
    head = window.buf[index:min(window.filled, index + 5)]
    if head != b"From "[:len(head)]:
        raise DataError(f"{name}: not an mbox file (it does not start with \"From \")")
    return index


class Window:
    """The bytes of a file from some offset on, in one reused buffer: buf[:filled] are
    those from offset base.  A plain file (fd) is read at any offset, so what is skipped
    is never read; any other stream in order."""

    def __init__(self, stream, base, fd=None):
        self.stream, self.fd, self.base = stream, fd, base
        self.buf, self.filled, self.ended = bytearray(), 0, False

    def hold(self, start, end):
        """Hold the bytes from start up to end, fewer where the file ends first; those
        before start may go.  Only a plain file goes back before base.  Returns start's
        index in buf."""
        if self.fd is not None and not self.base <= start <= self.base + self.filled:
            self.base, self.filled, self.ended = start, 0, False
        while self.base + self.filled < end and not self.ended:
            want = max(end - self.base - self.filled, BLOCK)
            if len(self.buf) - self.filled < want and start > self.base:
                drop = start - self.base  # make room: what is kept moves to the front
                self.buf[:self.filled - drop] = self.buf[drop:self.filled]
                self.base, self.filled = start, self.filled - drop
            if len(self.buf) - self.filled < want:  # grow by half at least
                self.buf.extend(bytes(max(want - len(self.buf) + self.filled,
                                          len(self.buf) // 2)))
            with memoryview(self.buf) as view, view[self.filled:] as space:
                if self.fd is None:
                    more = _fill(self.stream, space)
                else:
                    more = os.preadv(self.fd, [space[:want]], self.base + self.filled)
            self.filled += more
            self.ended = not more
        return start - self.base

    def peek(self, start, at, size):
        """The size bytes at offset at (fewer where the file ends), holding those from
        start on where the file is not a plain one."""
        if self.fd is not None and at + size > self.base + self.filled:
            return os.pread(self.fd, size, at)
        index = self.hold(start, at + size) + at - start
        return bytes(self.buf[index:min(index + size, self.filled)])

    def span(self, start):
        """(end, last) of the stored message from start on, then held whole: it ends at
        the next From line, else where the file does (then it is last, as is a message
        followed by a From line cut short: see spans)."""
        search = self.hold(start, start) + self.base
        while True:
            found = self.buf.find(SEPARATOR, search - self.base, self.filled)
            if found >= 0:
                return self.base + found + 1, False
            if self.ended:
                cut = _cut_from_line(self.buf, start - self.base, self.filled)
                return self.base + (cut or self.filled), True
            search = max(search, self.base + self.filled - len(SEPARATOR) + 1)
            self.hold(start, self.base + self.filled + BLOCK)


def _cut_from_line(buf, start, end):
    """Where buf[start:end] ends in a From line cut short after 1 to 4 bytes, or 0."""
    for size in range(1, len(SEPARATOR) - 1):
        if end - size > start + 1 and buf[end - size - 1:end] == SEPARATOR[:size + 1]:
            return end - size
    return 0


def compression_damage(exc):
    """Whether exc is a decompressor's complaint (lzma and isal are imported only when
    needed)."""
    lzma, isal = sys.modules.get("lzma"), sys.modules.get("isal.isal_zlib")
    return (isinstance(exc, (EOFError, zlib.error)) or lzma and isinstance(exc, lzma.LZMAError)
            or isal and isinstance(exc, isal.error)
            or isinstance(exc, OSError) and exc.errno is None)


def _fill(f, space):
    """Read into the memoryview space; returns how many bytes came."""
    readinto = getattr(f, "readinto", None)
    if readinto:
        return readinto(space) or 0
    data = f.read(len(space))
    space[:len(data)] = data
    return len(data)


def complete_streams_end(raw, suffix):
    """The length of the complete gzip members, bzip2 or xz streams a file starts with
    (raw is the file, read from its start)."""
    raw.seek(0)
    decompressor, position, good = compression.decompressor(suffix), 0, 0
    while chunk := raw.read(1 << 18):
        while chunk:
            try:
                decompressor.decompress(chunk)
            except Exception as exc:
                if not compression_damage(exc):
                    raise
                return good
            if not decompressor.eof:
                position += len(chunk)
                break
            position += len(chunk) - len(decompressor.unused_data)
            good, chunk = position, decompressor.unused_data.lstrip(b"\0")
            position += len(decompressor.unused_data) - len(chunk)
            decompressor = compression.decompressor(suffix)
    return good


def missing_gzip_trailer(raw, start):
    """For a gzip file whose last member, at start, holds all its deflate data but ends
    in its 8-byte trailer (CRC-32 and length, RFC 1952) or before it: the trailer bytes
    it lacks, which appended make the member whole; None for any other damage."""
    raw.seek(start)
    head = raw.read(10)
    if len(head) < 10 or head[:3] != b"\x1f\x8b\x08":
        return None
    flags = head[3]
    if flags & 4:  # FEXTRA
        size = raw.read(2)
        raw.seek(int.from_bytes(size, "little"), os.SEEK_CUR)
    for flag in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        while flags & flag and raw.read(1) not in (b"\0", b""):
            pass
    if flags & 2:  # FHCRC
        raw.read(2)
    inflate, crc, size = zlib.decompressobj(-15), 0, 0
    while not inflate.eof and (chunk := raw.read(1 << 18)):
        try:
            data = inflate.decompress(chunk)
        except zlib.error:
            return None
        crc, size = zlib.crc32(data, crc), size + len(data)
    if not inflate.eof:
        return None
    present = inflate.unused_data + raw.read(8)
    trailer = crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")
    if len(present) >= len(trailer) or not trailer.startswith(present):
        return None
    return trailer[len(present):]


class Suffixed:
    """A raw file read as if more bytes followed its end."""

    def __init__(self, raw, more):
        self.raw, self.more, self.given = raw, more, 0

    def seek(self, offset, whence=0):
        self.given = 0
        return self.raw.seek(offset, whence)

    def tell(self):
        return self.raw.tell() + self.given

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def read(self, size=-1):
        data = self.raw.read(size)
        if size is None or size < 0 or len(data) < size:
            more = self.more[self.given:self.given + (len(self.more) if size is None
                                                        or size < 0 else size - len(data))]
            self.given += len(more)
            data += more
        return data


class Prefix:
    """The first end bytes of a raw file, read as if they were all of it."""

    def __init__(self, raw, end):
        self.raw, self.end = raw, end

    def seek(self, offset, whence=0):
        return self.raw.seek(offset, whence)

    def tell(self):
        return self.raw.tell()

    def read(self, size=-1):
        left = max(self.end - self.raw.tell(), 0)
        return self.raw.read(left if size is None or size < 0 else min(size, left))

    def readinto(self, buffer):
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
