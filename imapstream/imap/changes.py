"""What changed in a folder since a HIGHESTMODSEQ (RFC 7162): one UID FETCH of FLAGS with
CHANGEDSINCE over the UIDs a checkpoint vouches for, answered by a FETCH per message
whose flags changed (the cost grows with the changes, not the folder) and, where the
connection has ENABLEd QRESYNC, a VANISHED (EARLIER) of the UIDs expunged since.  Also
the store's one use of the QRESYNC extension: connection.connect ENABLEs it when the
options ask (options.qresync) and the server offers it, with the first command after
login, before any EXAMINE.  The FETCH goes alone here, or in a folder's listing plan
(listing.py)."""

import re
from typing import NamedTuple

from .fetchparse import parse_simple, record_fields, split_responses, with_internaldate

_VANISHED = re.compile(rb"(?:\(EARLIER\) )?([\d:,]+)\Z", re.I)


class Changed(NamedTuple):
    uid: int
    flags: list
    modseq: int | None
    left_out: list


def since(store, last_uid, modseq, qresync):
    """([Changed] in UID order, [(first, last)] UID ranges vanished) for UIDs 1 to
    last_uid of the
    folder examined last, changed after modseq; vanished only with qresync (the
    connection ENABLEd it).  modseq None: every message's flags, as --refresh-flags
    asks of a server without CONDSTORE."""
    if last_uid < 1:
        return [], []
    return store.session.call(lambda client: _fetch(client, last_uid, modseq, qresync))


def command(uid_set, modseq, qresync):
    """The UID FETCH of the FLAGS changed after modseq in uid_set, with VANISHED
    (qresync); every message's FLAGS where modseq is None."""
    if modseq is None:
        return ("UID", "FETCH", uid_set, "(UID FLAGS)")
    return ("UID", "FETCH", uid_set, "(UID FLAGS MODSEQ)",
            f"(CHANGEDSINCE {modseq}{' VANISHED' if qresync else ''})")


def _fetch(client, last_uid, modseq, qresync):
    # Private API: imaplib's command, completion and untagged responses, as
    # transport.Client._fetch uses them; imapclient's fetch lists every number asked for.
    imap = client._imap
    imap.untagged_responses.pop("VANISHED", None)
    tag = imap._command(*command(f"1:{last_uid}", modseq, qresync))
    typ, raw = imap._command_complete("FETCH", tag)
    client._checkok("fetch", typ, raw)
    _typ, raw = imap._untagged_response(typ, raw, "FETCH")
    return found(raw, imap.untagged_responses.pop("VANISHED", []), last_uid)


def found(raw, vanished_said, last_uid):
    """([Changed] in UID order, [(first, last)] vanished) of imaplib's FETCH and VANISHED
    data of that UID FETCH, for UIDs up to last_uid."""
    from imapclient.response_parser import parse_fetch_response

    items_of = {}
    for response in split_responses(raw):
        parsed = parse_simple(response) or {
            seq: with_internaldate(items, response)
            for seq, items in parse_fetch_response(response, False, False).items()}
        for items in parsed.values():
            uid = items.get(b"UID")
            if isinstance(uid, int) and 0 < uid <= last_uid:
                items_of.setdefault(uid, {}).update(items)
    changed = []
    for uid in sorted(items_of):
        fields, left_out = record_fields(items_of[uid])
        seq = items_of[uid].get(b"MODSEQ")
        number = seq[0] if isinstance(seq, tuple) and seq and isinstance(seq[0], int) else None
        changed.append(Changed(uid, fields["flags"], number, left_out))
    vanished = []
    for text in vanished_said:
        match = _VANISHED.match(text.strip()) if isinstance(text, bytes) else None
        if match:
            vanished += _uid_ranges(match.group(1).decode(), last_uid)
    return changed, sorted(vanished)


def _uid_ranges(text, last_uid):
    """The (first, last) ranges of a uid-set, cut at last_uid (never expanded: a server
    may send 1:4294967295)."""
    for part in text.split(","):
        low, _, high = part.partition(":")
        if low.isdigit() and (high or low).isdigit():
            low, high = sorted((int(low), int(high or low)))
            if low <= last_uid:
                yield low, min(high, last_uid)
