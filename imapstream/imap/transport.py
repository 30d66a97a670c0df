"""The wire under IMAPClient: a TCP connection whose failures name the server (its TLS
contexts are tls.py's), COMPRESS (deflate.py), and a reader that keeps a hostile or broken
server from taking unbounded memory.

imaplib reads a literal whole into memory as soon as the server announces it, and keeps
every untagged response until the command ends.  Here each line is limited to
LINE_LIMIT bytes and everything one command receives (lines and literals together) to
RESPONSE_LIMIT: an announced literal that would pass the limit is refused before a byte
of it is read.  The limit is far above any real message (mail servers refuse messages
over 25-150 MB) and bounds the memory a backup can be made to take.  The network
timeout applies to every read, so a server that stalls ends the command with an error.

imapclient's public API lacks five things used here, each marked "private API" where it
is used: a hook for the imaplib connection class (_create_IMAP4, and the classes of
imapclient.imap4 and imapclient.tls to subclass, with the latter's wrap_socket for a
socket dialled early), imaplib's socket and reader (sock,
file: COMPRESS swaps them, see deflate.py), access to the raw FETCH response
(_imap._command, _command_complete, _untagged_response, with imapclient's
seq_to_parenstr_upper and parse_fetch_response: the fast parser and the strict UID
matching of fetchparse.fetched_items), an APPEND that sends the bytes as they are without
MULTIAPPEND (multiappend.__wrapped__), and imaplib's debug level (_imap.debug).
pyproject.toml pins imapclient to the minor version they were checked against."""

import contextlib
import imaplib
import logging
import re
import socket
import ssl

import imapclient
from imapclient import imap_utf7
from imapclient.exceptions import ProtocolError
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.imapclient import seq_to_parenstr_upper
from imapclient.tls import IMAP4_TLS, wrap_socket

from .. import deadline
from ..diagnostics import server_text
from ..errors import UNAVAILABLE, CommandError, ConnectRefused, ConnectTimeout
from . import deflate, dial, logins
from .fetchparse import fetched_items

LINE_LIMIT = 1 << 20
PIECE = 1 << 16
RESPONSE_LIMIT = 1 << 30
_SURROGATE = re.compile("[\ud800-\udfff]")
imaplib.Commands.setdefault("COMPRESS", ("AUTH", "SELECTED"))  # RFC 4978, as imapclient adds IDLE


class ProtocolViolation(CommandError):
    """The server broke the protocol or a limit; the connection cannot go on."""

    status = UNAVAILABLE


class _Guarded(logins.LoginInFlight):
    """Limits for imaplib.IMAP4: per line, and per command for all it receives."""

    on_data = None  # called with the size of each piece of a literal as it arrives
    starttls_sent = False  # by the dial (dial.py)
    starttls_answer = None  # its answer, where read before its time (_answer_first)
    enable_next = ()  # extensions to ENABLE in front of the next command (enable_later)
    enable_tag = None  # the tag of that ENABLE, once sent

    def __init__(self, *args, starttls_context=None, **kwargs):
        """starttls_context: the TLS context of a STARTTLS the dial may have sent."""
        self._received = 0
        self.starttls_context = starttls_context
        super().__init__(*args, **kwargs)

    def _get_capabilities(self):
        """The capabilities the greeting carries ([CAPABILITY ...], RFC 9051 7.1), else
        asked with CAPABILITY.  imaplib calls this after the greeting and after STARTTLS,
        where what the server said before TLS is dropped and asked again (RFC 9051
        6.2.1), with a login sent behind (logins.py).  Private API: imaplib's
        untagged_responses and capabilities."""
        said = self.untagged_responses.pop("CAPABILITY", None)
        if said and isinstance(said[-1], bytes) and not self._tls_established:
            self.capabilities = tuple(said[-1].decode("ascii", "replace").upper().split())
            return
        if self.starttls_sent and not self._tls_established:
            self._answer_first()
            return
        if self._tls_established and self.login_ahead:
            self.capabilities_and_login()
            return
        super()._get_capabilities()

    def _answer_first(self):
        """A greeting without capabilities, after the STARTTLS the dial sent, behind
        which no command can go (dial.py): its answer is read now (kept for
        finish_starttls), and the capabilities are those said before it, else asked over
        TLS, begun here; refused, they are asked in plain text, still logged out, to
        say whether STARTTLS is offered at all."""
        self.starttls_answer, said = dial.answer(self)
        if said:
            self.capabilities = said
            return
        try:
            dial.finish_starttls(self, self.starttls_context)
        except self.abort:
            raise
        except self.error as exc:
            super()._get_capabilities()
            raise starttls_refused(self.host, self.capabilities, exc) from None

    def _create_socket(self, timeout=None):
        where = f"{self.host} port {self.port}"
        try:
            with deadline.reading():  # and the TLS handshake, for IMAPS
                taken = dial.take((self.host, self.port))
                sock, self.starttls_sent = taken or (None, False)
                sock = self._secured(sock) if sock else super()._create_socket(timeout)
            # No Nagle delay: a command or a literal sent in pieces (APPEND without
            # LITERAL+) would wait ~40 ms for the server's delayed ACK each time.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except socket.gaierror as exc:
            raise CommandError(f"cannot resolve {self.host}: {exc.strerror}",
                               UNAVAILABLE) from None
        except ConnectionRefusedError:
            raise ConnectRefused(f"{where} refused the connection (IMAPS is usually port 993, "
                                 f"STARTTLS 143)") from None
        except TimeoutError:
            raise ConnectTimeout(f"timed out connecting to {where}") from None
        except ssl.SSLError as exc:
            if exc.reason == "WRONG_VERSION_NUMBER":
                raise CommandError(f"{where} does not speak TLS; for STARTTLS give --tls "
                                   f"starttls (IMAPS is usually port 993)", UNAVAILABLE) from None
            raise
        except CommandError:
            raise
        except OSError as exc:
            raise CommandError(f"cannot reach {where}: {exc.strerror or exc}",
                               UNAVAILABLE) from None

    def _secured(self, sock):
        """A socket dialled early (dial.py), as this connection speaks over it."""
        return sock

    def _new_tag(self):
        """A tag for the next command; the ENABLE of enable_later goes out first, in the
        same write where the command is written with others (pipeline.Wire)."""
        if self.enable_next:
            extensions, self.enable_next = self.enable_next, ()
            # The state as the server sees it (the ENABLE goes before any EXAMINE); the
            # literal, if any, is the command's own.
            state, self.state = self.state, "AUTH"
            literal, self.literal = self.literal, None
            try:
                self.enable_tag = self._command("ENABLE", *extensions)
            finally:
                self.state, self.literal = state, literal
        self._received = 0
        return super()._new_tag()

    def send(self, data):
        """A failed write is a lost connection (abort), as imaplib's own commands report
        it, also where imapclient writes a literal itself: never a BrokenPipeError, which
        the command edge takes for a closed standard output."""
        try:
            super().send(data)
        except OSError as exc:
            raise self.abort(f"socket error: {exc}") from None

    def _violation(self, message):
        """A ProtocolViolation, after closing a connection that has lost its footing:
        nothing more is read from it, not even the reply to LOGOUT."""
        with contextlib.suppress(OSError):
            self.shutdown()
        return ProtocolViolation(message)

    def _take(self, size, what):
        self._received += size
        if self._received > RESPONSE_LIMIT:
            raise self._violation(f"refusing a response of more than {RESPONSE_LIMIT} bytes "
                                  f"from the server ({what})")

    def readline(self):
        with deadline.reading():
            line = self.file.readline(LINE_LIMIT + 1)
        if len(line) > LINE_LIMIT:
            raise self._violation(f"the server sent a line of more than {LINE_LIMIT} bytes")
        self._take(len(line), "too many lines")
        return line

    def read(self, size):
        self._take(size, f"it announced a literal of {size} bytes")
        with deadline.reading():
            if self.on_data is None:
                return super().read(size)
            # Watched: in PIECE-sized reads, reported one by one (a progress line that
            # moves while a large message arrives); the pieces are joined once.
            pieces, left = [], size
            while left:
                piece = super().read(min(left, PIECE))
                if not piece:
                    break
                pieces.append(piece)
                left -= len(piece)
                self.on_data(len(piece))
            return b"".join(pieces)

    def _get_response(self):
        try:
            return super()._get_response()
        except self.abort as exc:
            if str(exc).startswith("unexpected"):
                raise self._violation(f"malformed response from the server: "
                                      f"{server_text(exc)}") from None
            raise


class _GuardedPlain(_Guarded, IMAP4WithTimeout):
    pass


class _GuardedTLS(_Guarded, IMAP4_TLS):
    def _secured(self, sock):
        return wrap_socket(sock, self.ssl_context, self.host)  # as IMAP4_TLS's own


class Client(imapclient.IMAPClient):
    """IMAPClient over the guarded reader.  A response to LIST, STATUS, EXAMINE or FETCH
    that imapclient cannot parse, or without the numbers the commands rely on, is a
    ProtocolViolation rather than an internal error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # IMAPClient sets imaplib's debug level 5, at which imaplib formats every
        # response with %r for its logger, even one that drops it: a fetched message's
        # literal twice over, and once more the whole batch.  Private API: imaplib's
        # attribute, reached through IMAPClient's _imap.
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            self._imap.debug = 0

    def watch_literals(self, on_data):
        """Call on_data(size) for each piece of a literal as it arrives (None: do not)."""
        self._imap.on_data = on_data

    def secured(self):
        """Whether TLS is in effect: IMAPS, or STARTTLS, which may be done as the
        connection opens (_Guarded._starttls_first)."""
        return self.ssl or self._imap._tls_established  # private API: imaplib's

    def tls_session(self):
        """The TLS session of the connection (ssl.SSLSession), None without TLS."""
        return getattr(self.socket(), "session", None)

    def capabilities(self):
        """The server's capabilities.  Before login, those imaplib read from the greeting
        or asked after STARTTLS (imapclient would ask again after STARTTLS at every call);
        after it, those of the login's tagged OK [CAPABILITY ...] if it said them, else
        asked once (imapclient's cache)."""
        if self._imap.state == "NONAUTH":
            return tuple(c.encode() for c in self._imap.capabilities)
        return super().capabilities()

    def enable_later(self, *extensions):
        """ENABLE extensions (RFC 5161) in front of the next command, its answer not
        waited for."""
        self._imap.enable_next = extensions

    def refused_enable(self):
        """Whether the server answered that ENABLE with other than OK."""
        tag = self._imap.enable_tag
        said = self._imap.tagged_commands.get(tag) if tag else None
        return bool(said) and said[0] != "OK"

    def logout_unanswered(self):
        """LOGOUT sent, its answer not read (the server's BYE and OK say nothing needed),
        then the connection closed."""
        try:
            self._imap.enable_next = ()
            self._imap._command("LOGOUT")  # private API: imaplib's, as for FETCH below
        finally:
            self.shutdown()

    def compress(self):
        """COMPRESS=DEFLATE (RFC 4978) if the server offers it; whether it is on."""
        return self.has_capability("COMPRESS=DEFLATE") and deflate.start(self._imap)

    def starttls(self, ssl_context=None, login_ahead=()):
        """STARTTLS, or the answer to the one the dial sent (dial.py); login_ahead: see
        logins.py.  Private API: IMAPClient's _starttls_done."""
        self._imap.login_ahead = login_ahead
        try:
            with deadline.reading():  # the TLS handshake
                if not self._imap.starttls_sent:
                    return super().starttls(ssl_context)
                dial.finish_starttls(self._imap, ssl_context)
                self._starttls_done = True
        finally:
            self._imap.login_ahead = ()

    def _create_IMAP4(self):  # private API: IMAPClient's factory of its imaplib object
        timeout = self._timeout.connect
        if self.ssl:
            return _GuardedTLS(self.host, self.port, self.ssl_context, timeout)
        return _GuardedPlain(self.host, self.port, timeout, starttls_context=self.ssl_context)

    def _parsed(self, command, method, *args):
        try:
            return method(*args)
        except (ProtocolError, ValueError, IndexError, KeyError) as exc:
            raise ProtocolViolation(f"malformed {command} response from the server: "
                                    f"{server_text(exc)}") from None

    def list_folders(self, directory="", pattern="*"):
        """LIST as (flags, delimiter, name) tuples; name is a str, or the bytes the server
        sent when they are not valid modified UTF-7 (RFC 3501, 5.1.3): 8-bit, undecodable,
        or decoding to lone surrogates, which neither JSON nor a later EXAMINE can carry."""
        encode, self.folder_encode = self.folder_encode, False
        try:
            folders = self._parsed("LIST", super().list_folders, directory, pattern)
        finally:
            self.folder_encode = encode
        return [(flags, delimiter, folder_name(name)) for flags, delimiter, name in folders]

    def folder_status(self, folder, what=None):
        status = self._parsed("STATUS", super().folder_status, folder, what)
        if not all(isinstance(value, int) for value in status.values()):
            raise ProtocolViolation(f"malformed STATUS response from the server: {status}")
        return status

    def select_folder(self, folder, readonly=False):
        command = "EXAMINE" if readonly else "SELECT"
        selected = self._parsed(command, super().select_folder, folder, readonly)
        return _checked_select(selected, command, folder)

    def selected_response(self, folder, untagged):
        """The answer to an EXAMINE sent by pipeline.py, as select_folder gives it, from
        its untagged responses (private API: IMAPClient's _process_select_response)."""
        selected = self._parsed("EXAMINE", self._process_select_response, untagged)
        return _checked_select(selected, "EXAMINE", folder)

    def fetch(self, messages, data, modifiers=None):
        """FETCH, or UID FETCH under use_uid: {number: items} for the numbers asked for,
        keyed by UID or by sequence number as IMAPClient.fetch keys them, but
        - each response is read alone, and under UID FETCH only those that carry a UID
          count.  A server may send FETCH responses nobody asked for in the middle
          (another client changed flags; Exchange adds FLAGS of its own), and imapclient
          files one without a UID under its sequence number even under UID FETCH, over
          the message whose UID is that number; after an EXPUNGE it would merge two
          messages that shared a sequence number; under FETCH by number one without a
          UID adds only what the message's own response lacks (its FLAGS never replace
          those asked for: listed flags are compared with the backup's);
        - runs of numbers go as ranges (1:2000), where imapclient lists every number:
          9 kB for 2000 messages, past the command length some servers accept."""
        return self._parsed("FETCH", self._fetch, messages, data, modifiers)

    def append_exact(self, folder, items):
        """APPEND items (dicts of msg, flags, date) in one command: MULTIAPPEND for
        several; (typ, data) of the tagged response.  imaplib's own APPEND rewrites bare
        CR and LF; this sends a message's bytes as they are, with LITERAL+ when the
        server offers it.  Private API: IMAPClient.multiappend without the decorator
        that refuses it, for one message, to a server without MULTIAPPEND."""
        return imapclient.IMAPClient.multiappend.__wrapped__(self, folder, items)

    def _fetch(self, messages, data, modifiers):
        wanted = set(messages)
        if not wanted:
            return {}
        # Private API: imaplib's command, completion and untagged response, so that
        # each FETCH response is read alone (see fetch).
        command = ("UID", "FETCH") if self.use_uid else ("FETCH",)
        tag = self._imap._command(*command, number_set(wanted), seq_to_parenstr_upper(data),
                                  seq_to_parenstr_upper(modifiers) if modifiers else None)
        typ, raw = self._imap._command_complete("FETCH", tag)
        self._checkok("fetch", typ, raw)
        _typ, raw = self._imap._untagged_response(typ, raw, "FETCH")
        return fetched_items(raw, wanted, self.use_uid)


def starttls_refused(host, capabilities, exc):
    """The error for a STARTTLS refused (exc, imaplib's error), with the capabilities
    said in plain text: never a fall back to plain text."""
    if "STARTTLS" not in (c.decode() if isinstance(c, bytes) else c for c in capabilities):
        return CommandError(f"{host} does not offer STARTTLS; refusing to log in without TLS "
                            f"(use --tls none to allow it)", UNAVAILABLE)
    return CommandError(f"{host} refused STARTTLS: {server_text(exc)}", UNAVAILABLE)


def _checked_select(selected, command, folder):
    if not all(isinstance(selected.get(key), int) for key in (b"UIDVALIDITY", b"EXISTS")):
        raise ProtocolViolation(f"the server's reply to {command} {folder!r} lacks "
                                f"UIDVALIDITY or EXISTS")
    return selected


def number_set(numbers):
    """A sequence set for a command: runs of consecutive numbers as first:last."""
    runs = []
    for number in sorted(numbers):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ",".join(f"{a}:{b}" if a != b else f"{a}" for a, b in runs)


def folder_name(raw):
    """A LIST name decoded from modified UTF-7, or raw itself when it is not valid."""
    if isinstance(raw, str):  # an all-digit name, which imapclient made a str
        return raw
    if not isinstance(raw, bytes):
        raise ProtocolViolation(f"malformed LIST response from the server: a folder name "
                                f"of {server_text(raw)}")
    if not raw.isascii():
        return raw
    if b"&" not in raw:  # modified UTF-7 changes nothing else
        return raw.decode("ascii")
    try:
        name = imap_utf7.decode(raw)
    except UnicodeError:
        return raw
    return raw if _SURROGATE.search(name) else name


def on_loopback(client):
    """Whether the client's server is this machine, by the address it is connected to."""
    return dial.on_loopback(client.socket())
