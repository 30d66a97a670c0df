"""The header section of a message of ours as mail clients leave it (imapstream(7),
"Mbox files").  Clients that open an mbox in place add, move and rewrite header lines:
mutt moves Status and X-Status to the end of the header and adds Content-Length and
Lines; Python's mailbox adds X-Status; Dovecot adds X-IMAPbase, X-UID, X-Status and
X-Keywords; Thunderbird puts X-Mozilla-Status, X-Mozilla-Status2 and X-Mozilla-Keys
before the first line.  A message's own lines with the names in OURS are escaped when
it is stored (mboxrd.RESERVED), so:

- a field (a line and the lines continuing it) named as in OURS, not escaped, was
  written by us or by a client: it is not the message's; the first X-Imapstream is the
  message's identity, the first Status, X-Status and X-Keywords its flags;
- a field named as in CLIENTS, which a message may have of its own, is the message's
  unless the message is not as long as its octets say with them all, and is without
  some of them (the fewest that do: droppable);
- every other line is the message's.

As we write it, X-Imapstream is the first field and only Status, X-Status,
X-Keywords, X-GM-THRID and X-Gmail-Labels (labels.py) follow it before the message's
own; a field of OURS anywhere else, or another first field, shows that a client
rewrote the header.  What is left is the message as stored where its length and
padding say so (ends_well); a message as we wrote it that ends before them is torn
(cut_short)."""

import itertools
import re

from ..message import crlf_size

OURS = frozenset((b"status", b"x-status", b"x-keywords", b"x-imapstream", b"x-uid", b"x-imap",
                  b"x-imapbase", b"content-length", b"x-gmail-labels", b"x-gm-thrid"))
FLAGS = frozenset((b"status", b"x-status", b"x-keywords", b"x-gmail-labels", b"x-gm-thrid"))
CLIENTS = frozenset((b"lines", b"x-mozilla-status", b"x-mozilla-status2", b"x-mozilla-keys"))
TRIED = 8  # the most fields of CLIENTS whose every combination droppable tries
_NAME = re.compile(rb"([^\s:>][^\s:]*)[ \t]*:")


def fields(header):
    """(lowercased name or None, start, end) per field of header: a line and the lines
    beginning with a space or tab after it.  None for a line that is not a field, such
    as an escaped one (">Status: RO")."""
    pos, size = 0, len(header)
    while pos < size:
        end = header.find(b"\n", pos) + 1 or size
        while end < size and header[end] in b" \t":
            end = header.find(b"\n", end) + 1 or size
        match = _NAME.match(header, pos, end)
        yield (match.group(1).lower() if match else None), pos, end
        pos = end


def clean(header, drop=frozenset()):
    """(the message's fields of header, joined; {name: value} of the first field of each
    name in OURS, its value unfolded and trimmed; whether a client rewrote the header).
    The fields numbered in drop (see droppable) go too, and count as a client's."""
    kept, found, rewritten, leading = [], {}, False, True
    for number, (name, start, end) in enumerate(fields(header)):
        ours = name in OURS
        if ours or number in drop:
            if ours and name not in found:
                found[name] = b" ".join(header[start:end].split(b":", 1)[1].split())
            rewritten |= not (ours and leading and (name == b"x-imapstream" if number == 0
                                                    else name in FLAGS))
            continue
        leading = False
        kept.append(header[start:end])
    return b"".join(kept), found, rewritten or b"x-imapstream" not in found


def droppable(header, least, most):
    """The numbers of the fewest fields of header named in CLIENTS whose sizes add up to
    least to most bytes (of the first TRIED of them), or None."""
    sizes = [(number, end - start) for number, (name, start, end) in enumerate(fields(header))
             if name in CLIENTS][:TRIED]
    for count in range(1, len(sizes) + 1):
        for chosen in itertools.combinations(sizes, count):
            if least <= sum(size for _number, size in chosen) <= most:
                return {number for number, _size in chosen}
    return None


def ends_well(full, octets, padded, size):
    """Whether full is data of octets bytes, then LFs: its padding and any more where
    padded (as we wrote it), else up to one more than its padding (a client may leave
    out the empty line, or add one), and then the data's CRLF size must be size, if
    known: a client that changed the message in place may have made it as long."""
    if octets is None or len(full) < octets or full[octets:].strip(b"\n"):
        return False
    if padded:
        return len(full) - octets >= _padding_size(full, octets)
    return len(full) - octets <= _padding_size(full, octets) + 1 and (
        size is None or crlf_size(full[:octets]) == size)


def cut_short(rest, full, octets):
    """Whether a message as we wrote it is a prefix of one: it ends inside a line, or
    before its data and padding do."""
    if not rest.endswith(b"\n"):
        return True
    return octets is not None and (len(full) < octets
                                   or len(full) < octets + _padding_size(full, octets))


def _padding_size(full, octets):
    return 2 if octets and full[octets - 1] != 0x0A else 1


def without_separator(data):
    """data without the LF of a trailing empty line (the separator before a From line)."""
    return data[:-1] if data.endswith(b"\n\n") else data
