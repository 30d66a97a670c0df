"""The command edge: exit statuses, typed errors, and the wrapper that turns them into
one line on stderr prefixed with the command's name.  Exit statuses follow sysexits(3)
where one fits; they are documented in every man page."""

import argparse
import errno
import os
import re
import sys

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


class ConnectRefused(ConnectionRefusedError):
    """The server refused the connection; the message names it.  Still a
    ConnectionError, so a session may try again."""


class ConnectTimeout(TimeoutError):
    """Connecting to the server timed out; the message names it."""


class _Exit(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as UsageError instead of exiting the process,
    so main() can be called in-process and returns its status."""

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise _Exit(status)

    def error(self, message):
        raise UsageError(f"{message} (see --help)")


def describe(exc):
    """Map an exception to (one-line message, exit status); never includes secrets."""
    message, status = _describe(exc)
    return printable(redact(message)), status


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
        return f"TLS failed: {exc.reason or exc}", UNAVAILABLE
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out waiting for the server", TEMPFAIL
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve server name: {exc.strerror}", UNAVAILABLE
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused by the server", UNAVAILABLE
    if isinstance(exc, (imaplib.IMAP4.abort, ConnectionError, EOFError)):
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


def server_text(text, limit=300):
    """Text from the server (or an exception carrying it) as one short line: without the
    b'' of a bytes repr, whitespace runs made one space, cut at limit characters."""
    text = str(text)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


_SECRETS = set()
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def secret(value):
    """Remember a password or token so that no message ever shows it; returns value."""
    if value:
        _SECRETS.add(value)
    return value


def redact(text):
    """text with every remembered secret replaced by ***."""
    for value in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def printable(text):
    """Control characters (from a hostile folder name or server reply) as \\xNN or
    \\uNNNN, so a message stays one line and cannot drive the terminal."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match):
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def warn(prog, message):
    inform(f"{prog}: {redact(message)}")


def inform(line):
    """One line on stderr, made printable; on a terminal it first clears a progress line
    drawn there."""
    clear = "\r\x1b[K" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{clear}{printable(line)}\n")
    sys.stderr.flush()


def guarded(prog, body, argv, stdin, stdout):
    """Run body(argv, stdin, stdout) and turn any failure into a message and a status."""
    try:
        return body(argv, stdin, stdout)
    except _Exit as done:
        return done.status
    except KeyboardInterrupt:
        warn(prog, "interrupted")
        return INTERRUPTED
    except BrokenPipeError:
        _silence(stdout)
        return BROKEN_PIPE
    except Exception as exc:  # the command edge: every error becomes one line
        message, status = describe(exc)
        warn(prog, message)
        return status


def _silence(stdout):
    # Keep the interpreter from complaining when it flushes a closed pipe at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, AttributeError, ValueError):
        pass


def entry_point(main):
    """Console-script wrapper: real stdin/stdout as binary streams, status to exit."""
    sys.exit(main(sys.argv[1:], sys.stdin.buffer, sys.stdout.buffer))
