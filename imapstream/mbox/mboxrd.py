"""mboxrd, the on-disk format, known here and nowhere else (but for the From line,
envelope.py, and the flag headers, flagheaders.py).

A message is stored as
    From SENDER DATE                      the From line (envelope.py)
    X-Imapstream: k=v; k=v ...            folder, delimiter, uidvalidity, uid, size,
                                          internaldate, octets (values percent-encoded);
                                          always the first line after the From line
    Status, X-Status, X-Keywords          the flag headers (flagheaders.py)
    the message in LF form (each CRLF of the server's bytes turned into LF), with
      - every line matching ^>*From  given one more '>' (mboxrd), and
      - every header-section line matching ^>*NAME: for a NAME in RESERVED given one
        more '>', so readers see only the flag headers above and the escape reverses
    one LF if the message does not end with one, then one empty line.
"octets" is the length of the message in LF form: a reader restores the exact bytes
and detects a torn tail, as it does a message that ends inside its From line or its
X-Imapstream line; a message of ours that a mail client rewrote is read as edited.py
says.  Messages without X-Imapstream (any other mboxrd or mboxo file) are
read the way mutt and Dovecot read them: their Status/X-Status/X-Keywords anywhere in
the header section are their flags, and those metadata headers go.
"""

import re
from urllib.parse import quote, unquote

from ..message import crlf_size, header_end, header_section, message_id
from . import edited, labels
from .envelope import envelope_date, from_line
from .flagheaders import FLAG_LINE, flag_headers, header_flags

RESERVED = (b"status|x-status|x-keywords|x-imapstream|x-uid|x-imap|x-imapbase|content-length"
            b"|x-gmail-labels|x-gm-thrid")
_RESERVED_ESCAPE = re.compile(rb"^(>*(?:" + RESERVED + rb")[ \t]*:)", re.MULTILINE | re.I)
_RESERVED_UNESCAPE = re.compile(rb"^>(>*(?:" + RESERVED + rb")[ \t]*:)", re.MULTILINE | re.I)
OWN_MARK = b"X-Imapstream: "
_OWN_META = re.compile(rb"X-Imapstream: ([^\n]*)\n")
_OWN_FLAGS = re.compile(rb"(Status|X-Status|X-Keywords|X-GM-THRID|X-Gmail-Labels): ?"
                        rb"([^\n]*)\n")
_FOREIGN_META = re.compile(rb"^(status|x-status|x-keywords|x-uid|x-imap|x-imapbase)[ \t]*:"
                           rb"([^\n]*)\n", re.MULTILINE | re.I)
_META_KEYS = ("folder", "delimiter", "uidvalidity", "uid", "size", "internaldate", "gm_msgid")
_META_INTS = ("uidvalidity", "uid", "size", "octets")
_SAFE = "/:+@<>,.-_~!$&'()*[]=#?"


class MboxError(ValueError):
    """A message that breaks the format, e.g. a torn tail left by a crash."""


def format_message(lf, record):
    """One message in mboxrd form, ready to append, from the message in LF form (see
    message.to_lf) and its record.  The body is copied once, into the result."""
    return b"".join(format_pieces(lf, record))


def format_pieces(lf, record):
    """format_message's result as pieces to write in turn; the body's are views of lf."""
    header = header_section(lf)
    known = {**record, "size": crlf_size(lf)} if record.get("size") is None else record
    meta = {k: known[k] for k in _META_KEYS if known.get(k) is not None}
    meta["octets"] = len(lf)
    return [
        from_line(header, record.get("internaldate")),
        OWN_MARK,
        "; ".join(f"{k}={quote(str(v), safe=_SAFE)}" for k, v in meta.items()).encode(),
        b"\n",
        flag_headers(record.get("flags") or ()),
        labels.headers(record),
        quote_from(_RESERVED_ESCAPE.sub(rb">\1", header)),
        *_quoted(lf, len(header)),
        _padding(lf),
    ]


def _padding(data):
    return b"\n\n" if data and not data.endswith(b"\n") else b"\n"


def _from_lines(data, marker, start=0, end=None):
    """Yield the start of each line in data[start:end] that matches ^>*MARKER, where
    marker is b"From " or b">From ": bytes.find does the scanning, not a regex."""
    end = len(data) if end is None else end
    at = data.find(marker, start, end)
    while at >= 0:
        line = at
        while line > start and data[line - 1] == 0x3E:  # '>'
            line -= 1
        if line == start or data[line - 1] == 0x0A:
            yield line
        at = data.find(marker, at + len(marker), end)


def quote_from(data):
    """mboxrd quoting: one more '>' before every line matching ^>*From ."""
    parts = _quoted(data)
    return b"".join(parts) if len(parts) > 1 else data


def _quoted(data, start=0):
    """quote_from(data[start:]) as pieces to join: views of data and b">", no copies."""
    parts, done = [], start
    with memoryview(data) as view:
        for line in _from_lines(data, b"From ", start):
            parts += (view[done:line], b">")
            done = line
        parts.append(view[done:])
    return parts


def unquote_from(data):
    """The inverse of quote_from: one '>' fewer on every line matching ^>+From ."""
    parts, done = [], 0
    for line in _from_lines(data, b">From "):
        parts.append(data[done:line])
        done = line + 1
    return b"".join(parts) + data[done:] if parts else data


def flag_fields(head):
    """(where the flag headers go, [(name, start, end)] of the flag fields there are, the
    end of the lines of Status, X-Status and X-Keywords right there) in head, the first
    bytes of a message of ours whose X-Imapstream line follows its From line: its flag
    fields right after that line as format_message writes them (one line each) or
    wherever a client moved them (edited.py).  None for any other message, or where its
    header section does not end within head."""
    newline = head.find(b"\n") + 1
    if not newline or head[newline:newline + len(OWN_MARK)] != OWN_MARK:
        return None
    match = _OWN_META.match(head, newline)
    end = head.find(b"\n\n", match.end() - 1) + 1 if match else 0
    if not end:
        return None
    run = match.end()
    while line := FLAG_LINE.match(head, run):
        run = line.end()
    return match.end(), [(name, match.end() + start, match.end() + stop) for name, start, stop
                         in edited.fields(head[match.end():end]) if name in edited.FLAGS], run


def parse_message(text, last=True):
    """Split one stored message (From line included, separator excluded) into
    (record, data): data is the message as it was given to format_message, in LF form,
    wherever a mail client left it so (see edited.py).  MboxError only for a torn
    message: the last of its file (last), as we write them and a prefix of one
    (edited.cut_short), or ending inside its From or X-Imapstream line.  A message of
    ours that cannot be matched to what was stored (its X-Imapstream line unreadable, or
    no client rewrote it and it is not as long as that line says) has the record of a
    foreign one, with the reason in "unmatched"."""
    newline = text.find(b"\n")
    if newline < 0:
        newline = len(text)
    envelope, rest = text[:newline], text[newline + 1:]
    if newline == len(text) or len(rest) < len(OWN_MARK) and OWN_MARK.startswith(rest):
        raise MboxError("message cut short (torn tail)")  # a prefix of our first line
    if rest.startswith(OWN_MARK) and not _OWN_META.match(rest):
        raise MboxError("message cut short (torn tail)")
    try:
        head = _own_head(text, 0, len(text))
    except MboxError:
        head = None
    if head is not None and head[1] is not None:  # as we wrote it?
        record, octets, pos = head
        unquoted = unquote_from(text[pos:])
        header = header_section(unquoted)
        full = _RESERVED_UNESCAPE.sub(rb"\1", header) + unquoted[len(header):]
        if len(full) >= octets and full[octets:] == _padding(full[:octets]):
            return record, full[:octets]
    return _parse_edited(envelope, rest, last)


def _parse_edited(envelope, rest, last):
    """parse_message for a message that is not as we wrote it (see edited.py)."""
    end = header_end(rest)
    header, found, rewritten = edited.clean(rest[:end])
    if b"x-imapstream" not in found:
        return _parse_foreign(envelope, rest)
    body = unquote_from(rest[end:])
    flags = header_flags(*(found.get(name, b"").decode("utf-8", "replace")
                     for name in (b"status", b"x-status", b"x-keywords")))
    if b"octets=" not in found[b"x-imapstream"]:  # we always write octets
        return _parse_foreign(envelope, rest)
    try:
        record = _parse_meta(found[b"x-imapstream"].decode("ascii", "replace"))
    except MboxError as exc:
        return _unmatched(envelope, {}, _own(header) + body, flags, str(exc))
    octets, full = record.pop("octets", None), _own(header) + body
    if not edited.ends_well(full, octets, not rewritten, record.get("size")):
        drop = octets is not None and edited.droppable(
            rest[:end], len(full) - octets - (len(body) - len(body.rstrip(b"\n"))),
            len(full) - octets)
        wider = drop and _own(edited.clean(rest[:end], drop)[0]) + body
        if wider and edited.ends_well(wider, octets, False, record.get("size")):
            full = wider
        elif rewritten:  # a client changed the message itself: kept as it is now
            record["flags"] = flags
            record.setdefault("size", crlf_size(full))
            return record, edited.without_separator(full)
        elif last and edited.cut_short(rest, full, octets):
            raise MboxError("message cut short (torn tail)")
        else:
            return _unmatched(envelope, record, full, flags, "message not as long as its "
                              "X-Imapstream header says")
    record["flags"] = flags
    record.update(labels.read(found))
    record.setdefault("size", crlf_size(full[:octets]))
    return record, full[:octets]


def _own(header):
    """The message's header from its stored fields: escaped and quoted lines restored."""
    return unquote_from(_RESERVED_UNESCAPE.sub(rb"\1", header))


def _unmatched(envelope, record, full, flags, reason):
    """A message of ours read as a foreign one: counted as holding no server message."""
    data = edited.without_separator(full)
    kept = {key: record[key] for key in ("folder", "delimiter") if key in record}
    return {**kept, "size": crlf_size(data), "internaldate": envelope_date(envelope),
            "flags": flags, "unmatched": reason}, data


def parse_held(buf, start, end, last=True):
    """parse_message(buf[start:end], last)'s record, with "message_id", read from the
    message's header and length alone where it is as we wrote it: then nothing is copied
    or unquoted.  buf may be bytes or an mmap; the same errors as parse_message."""
    try:
        head = _own_head(buf, start, end)
    except MboxError:
        head = None
    if head is not None and head[1] is not None:
        record, octets, pos = head
        header = header_end(buf, pos, end)
        unquoted = sum(1 for _ in _from_lines(buf, b">From ", pos, end))
        pad = end - pos - unquoted - _escaped(buf, pos, header) - octets
        if pad >= 0 and _padded(buf, end, pad, octets):
            record["message_id"] = message_id(buf[pos:header])
            return record
    return _held(*parse_message(buf[start:end], last))


def held_head(buf, start, end):
    """For a message of ours at buf[start] whose header section lies within buf[start:end]
    (which may end before the message does): (parse_held's record, pos, least), its data
    beginning at pos.  least is where it ends if it quotes no line and its data ends in
    LF: after octets bytes of data, one '>' per escaped header line and one LF of
    padding; with n lines quoted it ends where held_ends says.  None where parse_held
    needs the whole message: not one of ours, an empty line ending its header section
    not seen whole within buf[start:min(end, least)], or an octets beyond its size (a
    message in LF form is never longer than its CRLF size: a damaged length)."""
    try:
        head = _own_head(buf, start, end)
    except MboxError:
        return None
    if head is None or head[1] is None or head[1] > head[0]["size"]:
        return None
    record, octets, pos = head
    header = header_end(buf, pos, end)
    least = pos + octets + _escaped(buf, pos, header) + 1
    if header + 3 > min(end, least):  # "\r\n\r\n" from header - 1 on must lie within
        return None
    record["message_id"] = message_id(buf[pos:header])
    return record, pos, least


def held_ends(buf, end, least, quoted):
    """Whether a message that held_head measured, with quoted lines quoted, ends well at
    end (at the next From line, or the end of the file): as parse_held requires."""
    pad = end - least + 1 - quoted
    return pad > 0 and _padded(buf, end, pad, True)


def _padded(buf, end, pad, octets):
    """Whether the last pad bytes before end are the padding of data of octets bytes.
    The data's last byte and the padding are the buffer's last bytes: quoting only ever
    adds a '>' in front of "From " or a reserved header name."""
    return buf[end - pad:end] == (b"\n\n" if octets and buf[end - pad - 1] != 0x0A else b"\n")


def quoted_until_from(buf, start, end):
    """(n, at) for the lines of buf[start:end], which begins a line: n of them match
    ^>+From  before the first that matches ^From  (a From line: the next message), which
    begins at at (-1 if none).  One find for "From " tells both."""
    quoted = 0
    for line in _from_lines(buf, b"From ", start, end):
        if buf[line] != 0x3E:  # not '>': a From line
            return quoted, line
        quoted += 1
    return quoted, -1


def _escaped(buf, pos, header):
    """How many header lines of buf[pos:header] are escaped (pos begins a line)."""
    if buf[pos:pos + 1] != b">" and buf.find(b"\n>", pos, header) < 0:
        return 0
    return len(_RESERVED_UNESCAPE.findall(buf, pos, header))


def _own_head(buf, start, end):
    """(record without message_id, octets, where the message's data begins) for a
    message of ours with a size; None for any other."""
    newline = buf.find(b"\n", start, end)
    rest = newline + 1
    if newline < 0 or buf[rest:rest + len(OWN_MARK)] != OWN_MARK:
        return None
    head = _own_fields(buf, rest, end)
    return head if "size" in head[0] else None


def _own_fields(buf, rest, end):
    """(record with flags, octets, where the message's data begins) from the
    X-Imapstream line at buf[rest] and the flag headers after it, within buf[:end]."""
    match = _OWN_META.match(buf, rest, end)
    if not match:
        raise MboxError("message cut short (torn tail)")
    record, own, pos = _parse_meta(match.group(1).decode("ascii", "replace")), {}, match.end()
    while match := _OWN_FLAGS.match(buf, pos, end):
        own[match.group(1).lower()] = match.group(2)
        pos = match.end()
    record["flags"] = header_flags(*(own.get(name, b"").decode("utf-8", "replace")
                               for name in (b"status", b"x-status", b"x-keywords")))
    record.update(labels.read(own))
    return record, record.pop("octets", None), pos


def _held(record, data):
    record["message_id"] = message_id(header_section(data))
    return record


def _parse_foreign(envelope, rest):
    if rest.endswith(b"\n\n"):
        rest = rest[:-1]
    unquoted = unquote_from(rest)
    header, takeout, opened = labels.from_takeout(envelope, header_section(unquoted))
    unquoted = header + unquoted[len(header_section(unquoted)):]
    found = {}
    for match in _FOREIGN_META.finditer(header):
        found.setdefault(match.group(1).lower().decode(), match.group(2).decode("latin-1"))
    data = _FOREIGN_META.sub(b"", header) + unquoted[len(header):]
    record = {"size": crlf_size(data)}
    when = envelope_date(envelope)
    if when:
        record["internaldate"] = when
    record["flags"] = header_flags(found.get("status", ""), found.get("x-status", ""),
                             found.get("x-keywords", ""))
    if opened and "\\Seen" not in record["flags"]:
        record["flags"].append("\\Seen")
    return {**record, **takeout}, data


def _parse_meta(value):
    record = {}
    for item in value.split(";"):
        key, sep, raw = item.strip().partition("=")
        if not sep:
            continue
        text = unquote(raw) if "%" in raw else raw
        if key in _META_INTS:
            try:
                record[key] = int(text) if text.isascii() and text.isdigit() else -1
            except ValueError:  # more digits than int() takes
                record[key] = -1
            if record[key] < 0:
                raise MboxError(f"bad {key} in X-Imapstream header")
        else:
            record[key] = text
    return record
