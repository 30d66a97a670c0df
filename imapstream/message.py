"""What imapstream reads from a message itself: its header section and its identity."""

import re

# RFC 3501 flag: an atom, or "\\" and an atom; an atom is printable ASCII (0x21-0x7e)
# but none of " % ( ) * \\ ] {, as ranges here (a negated class spanning all of Unicode
# takes ~8 ms to compile at every start).
_FLAG = re.compile(r"\\?[!#$&'+-\[^-z|-~]+\Z")
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def header_section(data):
    """The header section: everything before the first empty line (all of it if none)."""
    return data[:header_end(data)]


def header_end(data, start=0, end=None):
    """Where the header section of data[start:end] ends (an index into data); data may
    be bytes or any buffer with find and slicing, such as an mmap: one byte into the
    first match of \\r?\\n\\r?\\n, found here with two finds, not a regex."""
    end = len(data) if end is None else end
    if data[start:start + 1] == b"\n" or data[start:start + 2] == b"\r\n":
        return start
    found = end
    for blank in (b"\n\n", b"\n\r\n"):
        at = data.find(blank, start, min(end, found + len(blank)))
        if at >= 0:
            found = min(found, at - 1 if at > start and data[at - 1] == 0x0D else at)
    return found + 1 if found < end else end


def message_id(header):
    """The first Message-ID header, unfolded and trimmed; None if there is none.
    The same rule applies on the server side (HEADER.FIELDS) and the mbox side."""
    # The regex runs from the line of the first "message-id" in any case: no header can
    # match before it (several times faster than searching the whole header).
    at = header.lower().find(b"message-id")
    match = _MESSAGE_ID.search(header, header.rfind(b"\n", 0, at) + 1) if at >= 0 else None
    if not match:
        return None
    value = b" ".join(match.group(1).split())
    return value.decode("utf-8", "replace") or None


def is_flag(text):
    """Whether text (a str) is a flag RFC 3501 allows: only such reach a record or a
    header line."""
    return _FLAG.match(text) is not None


def crlf_size(data):
    """RFC822.SIZE of a message: its length with every line ending counted as CRLF."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def to_lf(data):
    """A message as the server sends it (CRLF) to the form mbox files keep (LF)."""
    return data.replace(b"\r\n", b"\n")
