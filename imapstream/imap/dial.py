"""The TCP connection to the server, opened early: a command calls connection.dial_early
before it loads the IMAP and TLS libraries (imapclient, imaplib, ssl: most of its
start-up), and the name lookup, the TCP handshake and the server's greeting travel in a
thread meanwhile.  Over a link of round-trip time R that hides up to 1.5 R of the
start: R for the handshake, half of one more for the greeting.

The first connection the command makes to the same address takes the socket
(transport.py); a socket dialled more than FRESH seconds before it is taken (a password
typed at the prompt) is closed and a new one made, as servers end a connection that
waits long before it logs in."""

import socket
import threading
import time

FRESH = 10.0  # seconds


class Dial:
    """A connection to address (host, port) being opened in a thread, from now on."""

    def __init__(self, address, timeout):
        self.address, self.timeout = address, timeout
        self.started = time.monotonic()
        self._socket = self._error = None
        self._abandoned = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._connect, name="dial", daemon=True)
        self._thread.start()

    def _connect(self):
        try:
            sock = socket.create_connection(self.address, self.timeout)
        except OSError as exc:  # raised again where the socket is taken
            self._error = exc
            return
        with self._lock:
            if not self._abandoned:
                self._socket, sock = sock, None
        if sock is not None:
            sock.close()

    def take(self):
        """The connected socket, once the handshake is over, or the OSError connecting
        raised; None where it was dialled more than FRESH seconds ago (then closed)."""
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
    """The socket dialled to address for the connection being made (see offered), or
    None: then the connection dials itself."""
    global _offered
    dialled, _offered = _offered, None
    if dialled is None or dialled.address != address:
        return None
    return dialled.take()
