"""APPEND for imap-append: a batch of messages in one command, the UIDs the server gives
them (APPENDUID, RFC 4315), and a refusal told apart from a lost connection."""

import re

from .. import errors
from ..diagnostics import server_text

_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([\d:,]+)\]", re.I)


class AppendRefused(errors.CommandError):
    """BAD to an APPEND: after it the server may have read the rest of a literal as
    commands of its own, so nothing more is sent."""

    status = errors.PARTIAL


def batch(client, folder, positions, messages):
    """APPEND the messages at positions to folder in one command (MULTIAPPEND for
    several); {position: (uidvalidity, uid)} where APPENDUID numbers them all, else {}."""
    items = [dict(msg=m.wire, flags=m.flags, **({"date": m.date} if m.date else {}))
             for m in (messages[i] for i in positions)]
    try:
        typ, data = client.append_exact(folder, items)
    except Exception as exc:
        if not refusal(exc):
            raise
        raise AppendRefused(f"server said {server_text(exc)}; stopping") from None
    text = b" ".join(d for d in data if isinstance(d, bytes))
    if typ != "OK":
        raise errors.ServerError(server_text(text.decode("utf-8", "replace")))
    match = _APPENDUID.search(text) if client.has_capability("UIDPLUS") else None
    uids = _uid_set(match.group(2).decode()) if match else []
    if len(uids) != len(positions):
        return {}
    return {i: (int(match.group(1)), uid) for i, uid in zip(positions, uids, strict=True)}


def _uid_set(text):
    uids = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        low, high = sorted((int(low), int(high or low)))
        uids.extend(range(low, high + 1))
    return uids


def refusal(exc):
    """Whether exc is the server's NO or BAD to a command, not a lost connection."""
    import imaplib

    return isinstance(exc, imaplib.IMAP4.error) and not isinstance(exc, imaplib.IMAP4.abort)
