"""The From line that begins each stored message (see mboxrd.py): "From SENDER DATE",
the envelope sender (Return-Path, else MAILER-DAEMON) and INTERNALDATE in UTC in
asctime format.  The quoting of lines that look like one is mboxrd.py's."""

import re
from datetime import UTC, datetime

_RETURN_PATH = re.compile(rb"^return-path:[ \t]*<?([^>\s]*)", re.MULTILINE | re.I)


def from_line(header, internaldate):
    match = _RETURN_PATH.search(header)
    sender = match.group(1) if match and match.group(1) else b"MAILER-DAEMON"
    return b"From " + sender + b" " + _asctime(internaldate).encode() + b"\n"


def _asctime(internaldate):
    """INTERNALDATE in UTC in asctime form; the time of writing for none, or for one
    that is not ISO 8601 or has no UTC time in years 1 to 9999."""
    try:
        when = datetime.fromisoformat(internaldate)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).ctime()
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC).ctime()


def envelope_date(envelope):
    """INTERNALDATE (ISO 8601) from a From line's asctime date, or None; Google Takeout
    writes the UTC offset before the year (Mon Jan 01 00:00:00 +0000 2024)."""
    fields = envelope.decode("latin-1").split()
    for start in range(2, max(2, len(fields) - 4)):
        for count, form in ((5, "%a %b %d %H:%M:%S %Y"), (6, "%a %b %d %H:%M:%S %z %Y")):
            try:
                when = datetime.strptime(" ".join(fields[start:start + count]), form)
            except ValueError:
                continue
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
    return None
