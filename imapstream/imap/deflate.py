"""COMPRESS=DEFLATE (RFC 4978): the connection after the tagged OK to COMPRESS DEFLATE,
each way one raw DEFLATE stream (RFC 1951: no zlib or gzip header, hence wbits -15).

The client's stream is flushed with a sync flush after each write (imaplib writes a
command, or one literal, per call), so that the server can read a command whole as soon
as it is sent.  The server's stream is inflated PIECE bytes at most per call, however
much a few compressed bytes expand to: a hostile server's deflate bomb takes no more
memory than a plain connection would (transport.py's limits apply to what is inflated).

Which links: the plumbing asks for it where it pays (connection.py, --link-compression):
bodies cross a link slower than they deflate, but on loopback or with nothing to
download the round trip of COMPRESS is all there is to it."""

import io
import zlib

PIECE = 1 << 16
WBITS = -15  # raw DEFLATE


class Deflating:
    """The socket, writing through a DEFLATE stream; everything else as the socket does."""

    def __init__(self, sock):
        self._sock = sock
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, WBITS)

    def sendall(self, data):
        self._sock.sendall(self._deflate.compress(data) + self._deflate.flush(zlib.Z_SYNC_FLUSH))

    def __getattr__(self, name):  # settimeout, getpeername, shutdown, close, fileno, ...
        return getattr(self._sock, name)


class Inflating(io.RawIOBase):
    """What the server sends, inflated: a raw reader over source, a buffered reader of
    the connection that may already hold the first compressed bytes."""

    def __init__(self, source):
        super().__init__()
        self._source = source
        self._inflate = zlib.decompressobj(WBITS)
        self._pending = b""  # compressed input not inflated yet

    def readable(self):
        return True

    def readinto(self, buffer):
        while True:
            if not self._pending:
                self._pending = self._source.read1(PIECE)
                if not self._pending:
                    return 0  # the server closed the connection
            try:
                data = self._inflate.decompress(self._pending, min(len(buffer), PIECE))
            except zlib.error as exc:
                raise OSError(f"the server's COMPRESS stream is corrupt: {exc}") from None
            self._pending = self._inflate.unconsumed_tail
            if self._inflate.eof:
                raise OSError("the server ended its COMPRESS stream")
            if data:
                buffer[:len(data)] = data
                return len(data)

    def close(self):
        self._source.close()
        super().close()


def start(imap):
    """COMPRESS DEFLATE on imaplib's connection imap; whether the server agreed (then
    both ways are deflated from the end of its OK on).  Private API: imaplib's
    _simple_command, abort, error, and sock and file, swapped."""
    if isinstance(getattr(type(imap), "file", None), property):
        return False  # Python 3.14's imaplib: a reader of its own, not swapped here
    try:
        typ, _data = imap._simple_command("COMPRESS", "DEFLATE")
    except imap.abort:
        raise
    except imap.error:
        return False
    if typ != "OK":
        return False
    imap.sock, imap.file = Deflating(imap.sock), io.BufferedReader(Inflating(imap.file), PIECE)
    return True
