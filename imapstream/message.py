"""What imapstream reads from a message itself: its header section and its identity."""

import re

_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def header_section(data):
    """The header section: everything before the first empty line (all of it if none)."""
    return data[:header_end(data)]


def header_end(data, start=0, end=None):
    """Where the header section of data[start:end] ends (an index into data); data may
    be bytes or any buffer with find and slicing, such as an mmap."""
    end = len(data) if end is None else end
    if data[start:start + 1] == b"\n" or data[start:start + 2] == b"\r\n":
        return start
    match = _HEADER_END.search(data, start, end)
    return match.start() + 1 if match else end


def message_id(header):
    """The first Message-ID header, unfolded and trimmed; None if there is none.
    The same rule applies on the server side (HEADER.FIELDS) and the mbox side."""
    match = _MESSAGE_ID.search(header)
    if not match:
        return None
    value = b" ".join(match.group(1).split())
    return value.decode("utf-8", "replace") or None


def crlf_size(data):
    """RFC822.SIZE of a message: its length with every line ending counted as CRLF."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def to_lf(data):
    """A message as the server sends it (CRLF) to the form mbox files keep (LF)."""
    return data.replace(b"\r\n", b"\n")
