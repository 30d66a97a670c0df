"""Typed errors, exit statuses, and the one taxonomy of failures: describe() names a
failure in one line and gives its exit status; a failure whose status is TEMPFAIL is
worth a reconnect and a retry (transient), any other is not.  Exit statuses follow
sysexits(3) where one fits; they are documented in every man page."""

import errno
import re

from .diagnostics import printable, redact, server_text

OK = 0
PARTIAL = 1  # some folders or messages failed, the others were done
USAGE = 2
DATAERR = 65  # malformed input: NDJSON, message stream, mbox file
UNAVAILABLE = 69  # server unreachable, TLS handshake or certificate refused
SOFTWARE = 70  # a bug: please report it
IOERR = 74  # reading or writing a local file failed (disk full, permissions)
TEMPFAIL = 75  # timeout or connection lost: running again is expected to work
NOPERM = 77  # authentication failed
INTERRUPTED = 130  # SIGINT
BROKEN_PIPE = 141  # the reader of standard output went away


class CommandError(Exception):
    """An error with a one-line message for the user and an exit status."""

    status = SOFTWARE

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class UsageError(CommandError):
    status = USAGE


class DataError(CommandError):
    status = DATAERR


class ServerError(CommandError):
    """The server refused an operation on one folder or message; others may go on."""

    status = PARTIAL


class DeadlineReached(CommandError):
    """The command's --deadline passed: running again goes on, but no reconnect now."""

    status = TEMPFAIL


class LimitReached(CommandError):
    """A limit stops the run: the server's download limit or throttling, or --max-bytes.
    What was done is kept and running again goes on, but no reconnect now.  wait: the
    seconds the server asked to wait, or None when it did not say."""

    status = TEMPFAIL

    def __init__(self, reason, advice, wait=None):
        super().__init__(f"{reason}; {advice}")
        self.reason, self.advice, self.wait = reason, advice, wait


# What providers say when an account has used up what it may download (Gmail:
# "NO [OVERQUOTA] Account exceeded command or bandwidth limits.", 2,500 MB a day) or
# sends commands too fast (Microsoft 365: "NO Request is throttled. Suggested Backoff
# Time: 299609 milliseconds", also as BAD, then BYE).  [OVERQUOTA] alone is a full
# mailbox (RFC 5530), not a limit on downloads.
_BACKOFF = re.compile(r"Suggested Backoff Time: *(\d+) *milliseconds", re.I)
_BANDWIDTH = re.compile(r"bandwidth limit", re.I)


def server_limit_reached(limit):
    """The LimitReached for what server_limit found: when to run again, from the wait
    the server asked for, or a day for a limit it did not time (Gmail counts its
    download limit over 24 hours)."""
    import time

    text, wait = limit
    if wait is None:
        advice = "run again in 24 hours"
    else:
        advice = f"run again after {time.strftime('%H:%M', time.gmtime(time.time() + wait))} UTC"
    return LimitReached(f"the server's limit is reached: {text}", advice, wait)


def server_limit(exc):
    """(the server's words, seconds it asks to wait or None) when exc is a server's
    answer that a download or rate limit is reached; None for any other failure."""
    # The server's words alone, without imapclient's "fetch failed: " or imaplib's
    # "command: FETCH => " (a BYE).
    text = re.sub(r"^(\w+ failed: |command: [\w ]+ => )", "", server_text(exc))
    backoff = _BACKOFF.search(text)
    if backoff:
        return text, int(backoff.group(1)) / 1000
    if _BANDWIDTH.search(text):
        return text, None
    return None


class ConnectRefused(ConnectionRefusedError):
    """The server refused the connection; the message names it.  Still a
    ConnectionError, so a session may try again."""


class ConnectTimeout(TimeoutError):
    """Connecting to the server timed out; the message names it."""


def describe(exc):
    """Map an exception to (one-line message, exit status); never includes secrets."""
    message, status = _describe(exc)
    return printable(redact(message)), status


def transient(exc):
    """Whether a reconnect may cure exc: exactly the failures reported as TEMPFAIL, but
    for a deadline or a limit reached."""
    return (_describe(exc)[1] == TEMPFAIL
            and not isinstance(exc, (DeadlineReached, LimitReached)))


def _describe(exc):
    if isinstance(exc, CommandError):
        return str(exc), exc.status
    if isinstance(exc, ConnectRefused):
        return str(exc), UNAVAILABLE
    if isinstance(exc, ConnectTimeout):
        return str(exc), TEMPFAIL
    # Imported here: mbox-ids and mbox-merge never talk IMAP, and start faster without.
    import imaplib
    import socket
    import ssl

    from imapclient import exceptions as imap_errors

    if isinstance(exc, imap_errors.LoginError):
        return f"login failed: {server_text(exc)}", NOPERM
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"certificate not trusted: {exc.verify_message}; use --cafile FILE to trust a "
                f"private CA or self-signed certificate, or --fingerprint SHA256 to pin it"
                ), UNAVAILABLE
    if isinstance(exc, ssl.SSLEOFError) or "UNEXPECTED_EOF" in str(exc):
        return "connection lost: closed by the server during TLS", TEMPFAIL
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {getattr(exc, 'reason', None) or exc}", UNAVAILABLE
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out waiting for the server", TEMPFAIL
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve server name: {exc.strerror}", UNAVAILABLE
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by the server", UNAVAILABLE
    if isinstance(exc, (imaplib.IMAP4.abort, imap_errors.IMAPClientAbortError,
                        ConnectionError, EOFError)):
        return f"connection lost: {server_text(exc) or 'closed by the server'}", TEMPFAIL
    if isinstance(exc, imap_errors.ProtocolError):
        return f"malformed response from the server: {server_text(exc)}", UNAVAILABLE
    if isinstance(exc, (imap_errors.IMAPClientError, imaplib.IMAP4.error)):
        return f"server error: {server_text(exc)}", PARTIAL
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason = "no space left on device"
        return f"{where}{reason}", IOERR
    return f"internal error: {type(exc).__name__}: {exc}", SOFTWARE
