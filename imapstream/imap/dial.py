"""The TCP connection to the server, opened early: a command calls connection.dial_early
before it loads the IMAP and TLS libraries (imapclient, imaplib, ssl: most of its
start-up), and the name lookup, the TCP handshake and the server's greeting travel in a
thread meanwhile.  Over a link of round-trip time R that hides up to 1.5 R of the
start: R for the handshake, half of one more for the greeting.

With --tls starttls the thread also sends STARTTLS once the greeting shows it offered
([CAPABILITY ...] with STARTTLS, RFC 9051 7.1), looking at the greeting without taking
it from the socket: the connection reads the greeting as ever, then the answer to that
STARTTLS instead of sending its own (finish_starttls), which hides one round trip more.

The first connection the command makes to the same address takes the socket
(transport.py); a socket dialled more than FRESH seconds before it is taken (a password
typed at the prompt) is closed and a new one made, as servers end a connection that
waits long before it logs in."""

import socket
import sys
import threading
import time

FRESH = 10.0  # seconds
TAG = b"dial"  # the tag of the STARTTLS sent here; imaplib's tags are 4 letters and digits
GREETING_LIMIT = 1 << 16  # bytes looked at for the greeting's line


class Dial:
    """A connection to address (host, port) being opened in a thread, from now on."""

    def __init__(self, address, timeout, starttls=False):
        """starttls: send STARTTLS where the greeting offers it (Python 3.14's imaplib
        reads through a buffer of its own, which finish_starttls cannot reach)."""
        self.address, self.timeout = address, timeout
        self.starttls = starttls and sys.version_info < (3, 14)
        self.starttls_sent = False
        self.started = time.monotonic()
        self._socket = self._error = None
        self._abandoned = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._connect, name="dial", daemon=True)
        self._thread.start()

    def _connect(self):
        try:
            sock = socket.create_connection(self.address, self.timeout)
            if self.starttls:
                self.starttls_sent = _starttls_offered(sock)
                if self.starttls_sent:
                    sock.sendall(TAG + b" STARTTLS\r\n")
        except OSError as exc:  # raised again where the socket is taken
            self._error = exc
            return
        with self._lock:
            if not self._abandoned:
                self._socket, sock = sock, None
        if sock is not None:
            sock.close()

    def take(self):
        """The connected socket, once the handshake is over (and STARTTLS sent, if it
        is), or the OSError connecting raised; None where it was dialled more than FRESH
        seconds ago (then closed)."""
        if time.monotonic() - self.started > FRESH:
            self.close()
            return None
        self._thread.join()
        with self._lock:
            sock, self._socket, self._abandoned = self._socket, None, True
        if self._error is not None:
            raise self._error
        return sock

    def close(self):
        """Close the socket if nobody took it: at once, without waiting for one still
        connecting (to a server that does not answer, say), which its thread closes."""
        with self._lock:
            sock, self._socket, self._abandoned = self._socket, None, True
        if sock is not None:
            sock.close()


_offered = None  # the Dial the connection being made may take (offered)


class offered:
    """Within: the first socket made to dialled's address is dialled's (take); after,
    dialled is closed unless taken.  dialled may be None."""

    def __init__(self, dialled):
        self.dialled = dialled

    def __enter__(self):
        global _offered
        _offered = self.dialled

    def __exit__(self, *exc):
        global _offered
        _offered = None
        if self.dialled is not None:
            self.dialled.close()


def take(address):
    """(socket, whether STARTTLS was sent on it) dialled to address for the connection
    being made (see offered), or None: then the connection dials itself."""
    global _offered
    dialled, _offered = _offered, None
    if dialled is None or dialled.address != address:
        return None
    sock = dialled.take()
    return None if sock is None else (sock, dialled.starttls_sent)


def _starttls_offered(sock):
    """Whether the greeting waiting on sock, looked at and left there, is an OK whose
    capabilities offer STARTTLS; False for one not yet whole in a single segment."""
    seen = sock.recv(GREETING_LIMIT, socket.MSG_PEEK)
    line, ended, _rest = seen.partition(b"\r\n")
    words = line.upper().split()
    return bool(ended) and words[:3] == [b"*", b"OK", b"[CAPABILITY"] and (
        b"STARTTLS" in words or any(w.startswith(b"STARTTLS]") for w in words))


def finish_starttls(imap, context):
    """The STARTTLS the dial sent, answered and in effect on imaplib's connection imap:
    its answer read (a refusal is imaplib's error), the socket wrapped in TLS and the
    capabilities asked again, as imaplib's starttls does after sending its own.
    Private API: imaplib's readline, sock, file, _tls_established, _get_capabilities,
    error and abort."""
    line = imap.readline()
    if not line:
        raise imap.abort("socket error: EOF")
    if not line.upper().startswith(TAG.upper() + b" OK"):  # NO, BAD, or a BYE first
        said = line.removeprefix(TAG + b" ").rstrip(b"\r\n")
        raise imap.error(said.decode("utf-8", "replace"))
    imap.sock = context.wrap_socket(imap.sock, server_hostname=imap.host)
    imap.file = imap.sock.makefile("rb")
    imap._tls_established = True
    imap._get_capabilities()
