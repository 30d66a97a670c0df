"""Lines on stderr: warnings made one printable line, with every remembered secret
masked, and server text shortened to one line."""

import re
import sys

_SECRETS = set()
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def server_text(text, limit=300):
    """Text from the server (or an exception carrying it) as one short line: without the
    b'' of a bytes repr, whitespace runs made one space, cut at limit characters."""
    text = str(text)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def count(number, noun):
    """ "1 message", "2 messages": a count with its noun, singular or plural."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


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
