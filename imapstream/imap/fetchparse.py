"""FETCH responses in their common shape, read with regular expressions: a response of
numbers, FLAGS, INTERNALDATE, MODSEQ, Gmail's X-GM-MSGID, X-GM-THRID and X-GM-LABELS
(labels as atoms or quoted strings with \\ and \" the only escapes) and at most one
literal body section, the literal last.
Anything else gives None, and the caller uses imapclient's general parser, whose
results these equal (imapclient reads byte by byte: 2,000 message records took 0.6 s),
but for INTERNALDATE, read by internaldate() whichever parser read the rest.
fetched_items reads imaplib's FETCH data, response by response, with either.
"""

import re
from datetime import UTC, datetime, timedelta, timezone

from imapclient.response_parser import parse_fetch_response

from ..diagnostics import server_text
from ..message import is_flag

_MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
           b"Nov", b"Dec")
# RFC 3501 date-time: DD-Mon-YYYY HH:MM:SS +ZZZZ, the day padded with a space or not.
_DATE_TIME = re.compile(rb"( ?\d|\d\d)-(" + b"|".join(_MONTHS) + rb")-(\d{4}) "
                        rb"(\d\d):(\d\d):(\d\d) ([-+])(\d\d)(\d\d)\Z")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]*)"')
_RESPONSE_START = re.compile(rb"\d+ \(")  # "* 12 FETCH (" as imaplib keeps it: "12 ("
_HEAD = re.compile(rb"(\d+) \((.*?)(?: (BODY\[[^\]]*\]) \{(\d+)\})?\Z", re.DOTALL)
_ITEM = re.compile(rb'(UID|RFC822\.SIZE|X-GM-MSGID|X-GM-THRID) (\d+)|FLAGS \(([^()"{}]*)\)'
                   rb'|INTERNALDATE "([^"]*)"|X-GM-LABELS \(((?:[^()"]|"(?:[^"\\]|\\.)*")*)\)'
                   rb'|MODSEQ \((\d+)\)')
_LABEL = re.compile(rb'"((?:[^"\\]|\\["\\])*)"|(\\?[^\s()"\[\]{}%*\\]+)')
_UNESCAPE = re.compile(rb'\\(["\\])')
# RFC 3501: msg-att-static "BODY" section ["<" number ">"]; section-spec
# "HEADER.FIELDS" [".NOT"] SP header-list, header-list "(" astring *(SP astring) ")",
# keywords and field names case-insensitive, a field name an atom or a quoted string.
_SECTION = re.compile(rb"BODY\[([^\]]*)\](<\d+>)?\Z", re.I)
_HEADER_LIST = re.compile(rb"((?:\d+\.)*HEADER\.FIELDS(?:\.NOT)?) *\((.*)\)\Z", re.I)
_FIELD_NAME = re.compile(rb'"((?:[^"\\]|\\.)*)"|([^\s()"]+)')


def internaldate(text):
    """INTERNALDATE as a datetime with its UTC offset; text itself (bytes) where it is
    no date (29-Feb-2021, a month of 13) or one that has no UTC time in years 1 to 9999
    (31-Dec-9999 23:59:59 -2359)."""
    match = _DATE_TIME.match(text)
    if not match:
        return text
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
    try:
        when = datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute),
                        int(second), tzinfo=timezone(-offset if sign == b"-" else offset))
        when.astimezone(UTC)
    except (ValueError, OverflowError):
        return text
    return when


def with_internaldate(items, response):
    """items as imapclient's parser read them from response, INTERNALDATE read again
    by internaldate(): imapclient gives None for a date that is no date, and 2001 for
    01-Jan-0001."""
    if b"INTERNALDATE" in items:
        for part in response:
            match = _INTERNALDATE.search(part[0] if isinstance(part, tuple) else part)
            if match:
                items[b"INTERNALDATE"] = internaldate(match.group(1))
                break
    return items


def parse_simple(response):
    """{seq: items} as imapclient's parse_fetch_response gives it, or None."""
    if len(response) == 2 and isinstance(response[0], tuple) and response[1] == b")":
        head, literal = response[0]
    elif len(response) == 1 and isinstance(response[0], bytes) and response[0].endswith(b")"):
        head, literal = response[0][:-1], None
    else:
        return None
    match = _HEAD.match(head)
    if not match or (literal is None) != (match.group(3) is None):
        return None
    if literal is not None and int(match.group(4)) != len(literal):
        return None
    items, pos, body = {}, 0, match.group(2)
    while pos < len(body):
        item = _ITEM.match(body, pos)
        if not item:
            return None
        if item.group(1):
            items[item.group(1)] = int(item.group(2))
        elif item.group(3) is not None:
            items[b"FLAGS"] = tuple(item.group(3).split())
        elif item.group(4) is not None:
            items[b"INTERNALDATE"] = internaldate(item.group(4))
        elif item.group(6) is not None:
            items[b"MODSEQ"] = (int(item.group(6)),)  # RFC 7162: MODSEQ (n), as imapclient
        elif (labels := _labels(item.group(5))) is not None:
            items[b"X-GM-LABELS"] = labels
        else:
            return None
        pos = item.end()
        if pos < len(body):
            if body[pos:pos + 1] != b" ":
                return None
            pos += 1
    if literal is not None:
        items[match.group(3)] = literal
    seq = int(match.group(1))
    items[b"SEQ"] = seq
    return {seq: items}


def _labels(text):
    """X-GM-LABELS as imapclient reads them: NIL None, digits without a leading 0 an
    int, others bytes; None for a list this reader leaves to imapclient."""
    labels, pos = [], 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if not match:
            return None
        quoted, atom = match.groups()
        if atom is None:
            labels.append(_UNESCAPE.sub(rb"\1", quoted))
        elif atom == b"NIL":
            labels.append(None)
        else:
            labels.append(int(atom) if atom.isdigit() and (atom[:1] != b"0" or len(atom) == 1)
                          else atom)
        pos = match.end()
        if pos < len(text):
            if text[pos:pos + 1] != b" ":
                return None
            pos += 1
    return tuple(labels)


def section(key):
    """The one spelling of a FETCH response's BODY[...] item name, as imapstream asks
    for it: upper case, field names unquoted and one space apart, so that
    BODY[header.fields ("Message-ID")] is BODY[HEADER.FIELDS (MESSAGE-ID)]; None for a
    key that is not a body section."""
    match = _SECTION.match(key) if isinstance(key, bytes) else None
    if not match:
        return None
    spec = match.group(1)
    fields = _HEADER_LIST.match(spec)
    if fields:
        names = [re.sub(rb"\\(.)", rb"\1", m.group(1)) if m.group(1) is not None
                 else m.group(2) for m in _FIELD_NAME.finditer(fields.group(2))]
        spec = fields.group(1) + b" (" + b" ".join(names) + b")"
    return b"BODY[" + spec.upper() + b"]" + (match.group(2) or b"")


def record_fields(item):
    """({"size", "flags", "internaldate"}, left_out) of a message's FETCH items as a
    record carries them: RFC822.SIZE a non-negative integer or None; flags as strings,
    without \\Recent; INTERNALDATE in ISO 8601 with its offset, or None.  left_out says,
    for warnings, what the server sent that no record or mbox header can carry: a size
    that is no number, flags that are not atoms (RFC 3501), such as a keyword sent as a
    literal holding CR, LF or NUL, and a date internaldate() could not read."""
    flags, left_out = [], []
    size = item.get(b"RFC822.SIZE")
    if size is not None and not (type(size) is int and size >= 0):
        left_out.append(f"the RFC822.SIZE {server_text(size)!r}, which is not a number")
        size = None
    for flag in item.get(b"FLAGS", ()):
        # imapclient makes an all-digit atom an int, and NIL None.
        text = flag.decode("utf-8", "replace") if isinstance(flag, bytes) else str(flag)
        if flag is None or not is_flag(text):
            left_out.append(f"the flag {text!r}, which is not an atom (RFC 3501)")
        elif text.lower() != "\\recent":
            flags.append(text)
    date = item.get(b"INTERNALDATE")
    if isinstance(date, bytes):
        left_out.append(f"the INTERNALDATE {date.decode('latin-1')!r}, which is not a date "
                        f"in years 1 to 9999 (UTC)")
        date = None
    return {"size": size, "flags": flags,
            "internaldate": date.isoformat() if date else None}, left_out


def fetched_items(raw, wanted, by_uid):
    """{number: items} of imaplib's FETCH data for the numbers wanted, keyed by UID under
    UID FETCH (by_uid) and by sequence number otherwise (see Client.fetch)."""
    found = {}
    for response in split_responses(raw):
        parsed = parse_simple(response) or {
            seq: with_internaldate(items, response)
            for seq, items in parse_fetch_response(response, False, False).items()}
        for seq, items in parsed.items():
            number = items.pop(b"UID", None) if by_uid else seq
            if number in wanted:
                entry = found.setdefault(number, {})
                if by_uid or b"UID" in items:
                    entry.update(items)
                else:  # unsolicited (no UID asked for): the answer's own items win
                    for key, value in items.items():
                        entry.setdefault(key, value)
    return found


def split_responses(raw):
    """imaplib's FETCH data split into one list per response.  A response starts with its
    sequence number and "("; what follows a literal starts with a space or ")"."""
    responses = []
    for part in raw:
        if part is None:
            continue
        head = part[0] if isinstance(part, tuple) else part
        if not responses or _RESPONSE_START.match(head):
            responses.append([])
        responses[-1].append(part)
    return responses
