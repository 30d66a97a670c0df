"""Reading mbox files fast: each stored message as a span of one reused buffer, found
with bytes.find over blocks of 4 MiB, and the held record of each message read from its
header and length alone (mboxrd.parse_held).  Plain files are read with readinto,
gzip files through zlib directly; offsets count uncompressed bytes."""

import sys
import zlib

from .cli import DataError
from .mboxrd import MboxError, parse_held

BLOCK = 4 << 20
SEPARATOR = b"\nFrom "


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
    buf = bytearray(BLOCK)
    try:
        filled = _fill(f, buf, 0)
        if not filled:
            return
        head = min(filled, 5)  # a file shorter than "From " may be a torn first From line
        if buf[:head] != b"From "[:head]:
            raise DataError(f"{name}: not an mbox file (it does not start with \"From \")")
        start = search = 0
        while True:
            cut = buf.find(SEPARATOR, search, filled)
            if cut >= 0:
                yield buf, start, cut + 1, base + start, False
                start = search = cut + 1
                continue
            if start:  # keep only the message under way, at the front
                buf[:filled - start] = buf[start:filled]
                filled, base, start = filled - start, base + start, 0
            search = max(filled - len(SEPARATOR) + 1, 0)
            if filled == len(buf):
                buf.extend(bytes(BLOCK))
            more = _fill(f, buf, filled)
            if not more:
                cut = _cut_from_line(buf, filled)
                if cut:
                    yield buf, 0, cut, base, True
                yield buf, cut, filled, base + cut, True
                return
            filled += more
    except EOFError:
        raise CutStream(name) from None
    except Exception as exc:
        if not compression_damage(exc):
            raise
        raise DataError(f"{name}: damaged compressed file: {exc}") from None


def _cut_from_line(buf, end):
    """Where buf[:end] ends in a From line cut short after 1 to 4 bytes, or 0."""
    for size in range(1, len(SEPARATOR) - 1):
        if end - size > 1 and buf[end - size - 1:end] == SEPARATOR[:size + 1]:
            return end - size
    return 0


def compression_damage(exc):
    """Whether exc is a decompressor's complaint (lzma is imported only when needed)."""
    lzma = sys.modules.get("lzma")
    return (isinstance(exc, (EOFError, zlib.error)) or lzma and isinstance(exc, lzma.LZMAError)
            or isinstance(exc, OSError) and exc.errno is None)


def _fill(f, buf, at):
    """Read into buf from index at, up to its end; returns how many bytes came."""
    readinto = getattr(f, "readinto", None)
    if readinto:
        with memoryview(buf) as view, view[at:] as free:
            return readinto(free) or 0
    data = f.read(len(buf) - at)
    buf[at:at + len(data)] = data
    return len(data)


class HeldScan:
    """(offset, record) per message of a file from a raw offset on, records as
    mboxrd.parse_held gives them.  Once iterated: end is the uncompressed offset after
    the last whole message, and torn_at the offset of a torn last message (or None)."""

    def __init__(self, raw, suffix, name, raw_start=0, base=0):
        self.raw, self.suffix, self.name = raw, suffix, name
        self.raw_start, self.end, self.torn_at = raw_start, base, None

    def __iter__(self):
        self.raw.seek(self.raw_start)
        stream = _decompressed(self.raw, self.suffix)
        for buf, start, end, offset, last in spans(stream, self.name, self.end):
            try:
                record = parse_held(buf, start, end)
            except MboxError as exc:
                if last:
                    self.torn_at = offset
                    raise TornTail(self.name, offset) from None
                raise DataError(f"{self.name}: message at byte {offset}: {exc}") from None
            self.end = offset + end - start
            yield offset, record


def _decompressed(raw, suffix):
    if suffix == ".gz":
        return GzipMembers(raw)
    if suffix == ".bz2":
        import bz2  # imported here: loading the library costs start-up time
        return bz2.BZ2File(raw, mode="rb")
    if suffix == ".xz":
        import lzma
        return lzma.LZMAFile(raw, mode="rb")
    return raw


class GzipMembers:
    """The members of a gzip file one after another, inflated by zlib, which checks each
    member's CRC and length (about 1.5x the speed of gzip.GzipFile)."""

    def __init__(self, raw):
        self.raw, self.pending, self.inflate, self.within = raw, b"", None, False

    def read(self, size):
        while True:
            if not self.pending:
                self.pending = self.raw.read(1 << 20)
                if not self.pending:
                    if self.within:
                        raise EOFError("Compressed file ended before the end-of-stream "
                                       "marker was reached")
                    return b""
            if not self.within:
                self.pending = self.pending.lstrip(b"\0")  # padding after the last member
                if not self.pending:
                    continue
                self.inflate, self.within = zlib.decompressobj(31), True
            data = self.inflate.decompress(self.pending, size)
            if self.inflate.eof:
                self.pending, self.within = self.inflate.unused_data, False
            else:
                self.pending = self.inflate.unconsumed_tail
            if data:
                return data


def _decompressor(suffix):
    if suffix == ".gz":
        return zlib.decompressobj(31)
    if suffix == ".bz2":
        import bz2
        return bz2.BZ2Decompressor()
    import lzma
    return lzma.LZMADecompressor()


def complete_streams_end(raw, suffix):
    """The length of the complete gzip members, bzip2 or xz streams a file starts with
    (raw is the file, read from its start)."""
    raw.seek(0)
    decompressor, position, good = _decompressor(suffix), 0, 0
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
            decompressor = _decompressor(suffix)
    return good


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
