"""The TCP connection to the server, opened early: a command calls connection.dial_early
before it loads the IMAP and TLS libraries (imapclient, imaplib, ssl: most of its
start-up), and the name lookup, the TCP handshake and the server's greeting travel in a
thread meanwhile.  Over a link of round-trip time R that hides up to 1.5 R of the
start: R for the handshake, half of one more for the greeting.

With --tls starttls the thread also sends STARTTLS as soon as the handshake is over,
before the greeting comes (the server reads it once it has greeted), which hides one
round trip more: the answer comes with the greeting, not a round trip after it.  The
connection reads the greeting as ever, then the answer to that STARTTLS instead of
sending its own (finish_starttls).  No command can go between them: nothing but TLS
may follow a STARTTLS, so capabilities the greeting does not carry are asked over TLS
(transport.py), and a STARTTLS refused is the server's answer as ever.  Not on
loopback, where there is no round trip to save: there the server may be a local proxy
that greets only once its own connection onwards is up and mishandles a command sent
before (email-oauth2-proxy, issue 101 of its repository).

The first connection the command makes to the same address takes the socket
(transport.py); a socket dialled more than FRESH seconds before it is taken (a password
typed at the prompt) is closed and a new one made, as servers end a connection that
waits long before it logs in."""

import re
import socket
import sys
import threading
import time

FRESH = 10.0  # seconds
TAG = b"dial"  # the tag of the STARTTLS sent here; imaplib's tags are 4 letters and digits
_CAPABILITY = re.compile(rb"\* OK \[CAPABILITY ([^]]*)\]", re.IGNORECASE)


class Dial:
    """A connection to address (host, port) being opened in a thread, from now on."""

    def __init__(self, address, timeout, starttls=False):
        """starttls: send STARTTLS once connected (not on Python 3.14, whose imaplib
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
            if self.starttls and not on_loopback(sock):
                sock.sendall(TAG + b" STARTTLS\r\n")
                self.starttls_sent = True
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


def on_loopback(sock):
    """Whether sock is connected to this machine, by the address of its peer."""
    import ipaddress

    address = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    return address.is_loopback or bool(getattr(address, "ipv4_mapped", None)
                                       and address.ipv4_mapped.is_loopback)


def answer(imap):
    """(The answer to the dial's STARTTLS, the capabilities an untagged [CAPABILITY ...]
    said before it, or None), read from imaplib's connection imap.  Untagged lines may
    come first: a Dovecot whose login process still waits for its auth process greets
    with "* OK Waiting for authentication process" and again, with its capabilities,
    once it can.  Private API: imaplib's readline and abort."""
    capabilities = None
    while (line := imap.readline()).startswith(b"* "):
        said = _CAPABILITY.match(line)
        if said:
            capabilities = tuple(said[1].decode("ascii", "replace").upper().split())
        elif line[2:6].upper() == b"BYE ":
            raise imap.abort(line[6:].rstrip(b"\r\n").decode("utf-8", "replace"))
    if not line:
        raise imap.abort("socket error: EOF")
    return line, capabilities


def finish_starttls(imap, context):
    """The STARTTLS the dial sent, answered and in effect on imaplib's connection imap:
    its answer read, unless imap.starttls_answer holds it (a refusal is imaplib's
    error), the socket wrapped in TLS and the capabilities asked again, as imaplib's
    starttls does after sending its own.  Private API: imaplib's sock, file,
    _tls_established, _get_capabilities and error."""
    line = imap.starttls_answer or answer(imap)[0]
    if not line.upper().startswith(TAG.upper() + b" OK"):  # NO or BAD
        said = line.removeprefix(TAG + b" ").rstrip(b"\r\n")
        raise imap.error(said.decode("utf-8", "replace"))
    imap.sock = context.wrap_socket(imap.sock, server_hostname=imap.host)
    imap.file = imap.sock.makefile("rb")
    imap._tls_established = True
    imap._get_capabilities()
