"""Gmail's labels in mbox files, as Google Takeout writes them: before the message,
    X-GM-THRID: 1793658206487364212          the thread id, decimal
    X-Gmail-Labels: Archived,Work,Opened     the labels as one CSV record (RFC 4180:
                                             a label with a comma or quote is quoted)
System labels by Takeout's names (\\Inbox Inbox, \\Sent Sent, \\Draft Drafts,
\\Important Important, \\Starred Starred, \\Spam Spam, \\Trash Trash); Takeout adds
Archived for a message outside the Inbox, Spam and Trash, and Opened or Unread.  Read
back, those three and Gmail's categories ("Category Updates": IMAP cannot set them) are
no labels; the rest are, as written.  A message stored from Gmail (its record has
"labels") carries both lines after its flag headers (mboxrd.py), and a message's own
lines of these names are escaped like the other reserved headers."""

import csv
import re

TAKEOUT = {"\\Inbox": "Inbox", "\\Sent": "Sent", "\\Draft": "Drafts",
           "\\Important": "Important", "\\Starred": "Starred", "\\Spam": "Spam",
           "\\Trash": "Trash"}
_SYSTEM = {name.lower(): label for label, name in TAKEOUT.items()} | {"draft": "\\Draft"}
_STATES = {"archived", "opened", "unread"}
NAMES = (b"x-gmail-labels", b"x-gm-thrid")
# Takeout's lines anywhere in a foreign message's header section, folded or not
TAKEOUT_LINE = re.compile(rb"^(x-gmail-labels|x-gm-thrid)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*)\n",
                          re.MULTILINE | re.I)
_THREAD = re.compile(r"[0-9]+")
_FOLD = re.compile(r"\r?\n(?=[ \t])")  # unfolding (RFC 5322, 2.2.3)
_ENVELOPE_ID = re.compile(rb"From (\d+)@xxx ")  # Takeout's From line: the X-GM-MSGID


def headers(record):
    """The X-GM-THRID and X-Gmail-Labels lines of a record with "labels", else b""."""
    labels = record.get("labels")
    if not isinstance(labels, list):
        return b""
    thrid = record.get("gm_thrid")
    line = b"X-GM-THRID: " + thrid.encode() + b"\n" if thrid else b""
    archived = not any(label in labels for label in ("\\Inbox", "\\Spam", "\\Trash"))
    seen = any(f.lower() == "\\seen" for f in record.get("flags") or ())
    names = (["Archived"] if archived else []) + [TAKEOUT.get(x, x) for x in labels]
    names.append("Opened" if seen else "Unread")
    return line + b"X-Gmail-Labels: " + _csv(names).encode() + b"\n"


def _csv(names):
    return ",".join(f'"{n.replace(chr(34), 2 * chr(34))}"' if re.search(r'[,"]|^\s|\s$', n)
                    else n for n in names)


def read(found):
    """{"labels", "gm_thrid"} from {lowercased name: value} of those lines ({} without
    an X-Gmail-Labels line)."""
    value = found.get(b"x-gmail-labels")
    if value is None:
        return {}
    text = _FOLD.sub("", value.decode("utf-8", "replace")).strip(" \t")
    labels = []
    for name in next(csv.reader([text], skipinitialspace=True), []):
        label = _SYSTEM.get(name.lower(), name) if name.lower() in _SYSTEM else name
        if name and name.lower() not in _STATES and not name.startswith("Category ") \
                and label not in labels:
            labels.append(label)
    thrid = found.get(b"x-gm-thrid", b"").decode("ascii", "replace").strip()
    return {"labels": labels, **({"gm_thrid": thrid} if _THREAD.fullmatch(thrid) else {})}


def from_takeout(envelope, header):
    """(header without Takeout's lines, {"labels", "gm_thrid", "gm_msgid"}, whether
    its labels say Opened) of a foreign message (Takeout's From line names the
    X-GM-MSGID)."""
    found = {}
    for match in TAKEOUT_LINE.finditer(header):
        found.setdefault(match.group(1).lower(), match.group(2))
    if b"x-gmail-labels" not in found:  # not Takeout's: its lines are the message's
        return header, {}, False
    fields = read(found)
    envelope_id = _ENVELOPE_ID.match(envelope)
    if envelope_id and fields:
        fields["gm_msgid"] = envelope_id.group(1).decode()
    opened = re.search(rb"(?:^|,)\s*opened\s*(?:,|$)", found.get(b"x-gmail-labels", b""), re.I)
    return TAKEOUT_LINE.sub(b"", header), fields, bool(opened)
