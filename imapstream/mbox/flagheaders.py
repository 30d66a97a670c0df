"""The flag headers of a stored message (see mboxrd.py), one line each:
    Status: RO / O                        \\Seen -> R; O always (no \\Recent in a backup)
    X-Status: AFTD                        \\Answered \\Flagged \\Draft(T) \\Deleted; if any
    X-Keywords: k1 k2                     keywords that are atoms (RFC 3501), always,
                                          then ROOM spaces: room to rewrite the flag
                                          headers in place (flag_headers)
"""

import functools
import re

from ..message import is_flag

ROOM = 32  # spaces after the keywords of X-Keywords as written: room for later flags
OWN_FLAGS = frozenset((b"status", b"x-status", b"x-keywords"))
FLAG_LINE = re.compile(rb"(Status|X-Status|X-Keywords): ?([^\n]*)\n")
_X_STATUS = (("\\answered", "A"), ("\\flagged", "F"), ("\\draft", "T"), ("\\deleted", "D"))
_X_STATUS_FLAG = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}


def flag_headers(flags, length=None):
    """Status, X-Status (if any) and X-Keywords, always: its keywords, then ROOM spaces,
    or as many as make the headers length bytes long (None where they do not fit), so
    that other flags can later be written over them in place."""
    lowered = {f.lower() for f in flags}
    lines = [b"Status: RO\n" if "\\seen" in lowered else b"Status: O\n"]
    x_status = "".join(letter for flag, letter in _X_STATUS if flag in lowered)
    if x_status:
        lines.append(b"X-Status: " + x_status.encode() + b"\n")
    keywords = [f for f in flags if not f.startswith("\\") and is_flag(f)]
    lines.append(b"X-Keywords:" + b"".join(b" " + k.encode() for k in keywords))
    head = b"".join(lines)
    room = ROOM if length is None else length - len(head) - 1
    return None if room < 0 else head + b" " * room + b"\n"


def stored_flags(flags):
    """flags as the flag headers keep them: what a reader gets back (see flag_headers)."""
    return list(_stored_flags(tuple(flags)))


@functools.lru_cache(maxsize=1024)  # a few sets of flags recur across a whole run
def _stored_flags(flags):
    own = {m.group(1).lower(): m.group(2).decode()
           for m in FLAG_LINE.finditer(flag_headers(flags))}
    return tuple(header_flags(own.get(b"status", ""), own.get(b"x-status", ""),
                              own.get(b"x-keywords", "")))


def header_flags(status, x_status, keywords):
    """The flags that the values of Status, X-Status and X-Keywords give."""
    flags = ["\\Seen"] if "R" in status else []
    flags += [_X_STATUS_FLAG[c] for c in "AFTD" if c in x_status]
    flags += keywords.split()  # keywords are atoms: a comma is part of one (as Dovecot reads)
    return flags
