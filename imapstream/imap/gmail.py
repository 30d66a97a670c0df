"""Gmail's IMAP extension (capability X-GM-EXT-1, developers.google.com/gmail/imap):
each label is a folder, every message not in Spam or Trash is also in the folder whose
special use is \\All, and each copy carries the message's X-GM-MSGID, X-GM-THRID and
X-GM-LABELS.  Labels are names in modified UTF-7, the system ones \\Inbox, \\Sent,
\\Draft, \\Important, \\Starred, \\Spam and \\Trash; the label of the folder selected may
be left out of X-GM-LABELS, so a folder's own label is added back."""

import re

from imapclient.imap_utf7 import decode as utf7_decode
from imapclient.imap_utf7 import encode as utf7_encode

CAPABILITY = "X-GM-EXT-1"
ITEMS = ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"]
# special-use flag of a folder: the system label its messages have (\All: none)
LABEL_OF_SPECIAL_USE = {"\\inbox": "\\Inbox", "\\sent": "\\Sent", "\\drafts": "\\Draft",
                        "\\important": "\\Important", "\\flagged": "\\Starred",
                        "\\junk": "\\Spam", "\\trash": "\\Trash", "\\all": None}
ONCE = ("\\all", "\\junk", "\\trash")  # the folders that hold every message once
HIDDEN = ("\\Spam", "\\Trash")  # a message with one of these is in that folder alone
# a system label's folder on a server without labels, unless one has its special use
FOLDER_OF_LABEL = {"\\Inbox": ("INBOX", None), "\\Sent": ("Sent", "\\sent"),
                   "\\Draft": ("Drafts", "\\drafts"), "\\Important": ("Important", None),
                   "\\Starred": ("Starred", None), "\\Spam": ("Junk", "\\junk"),
                   "\\Trash": ("Trash", "\\trash")}
NO_LABEL = ("Archive", "\\archive")  # the folder of a message without labels
FLAG_OF_LABEL = {"\\Starred": "\\Flagged", "\\Draft": "\\Draft"}
_NOT_IN_ATOM = re.compile(r'[(){ %*"\\\]]')  # atom-specials a modified UTF-7 name may hold


def folder_label(name, flags):
    """The label of the folder name with flags: INBOX's, a special use's, else its name."""
    if name.upper() == "INBOX":
        return "\\Inbox"
    for flag in flags:
        if flag.lower() in LABEL_OF_SPECIAL_USE:
            return LABEL_OF_SPECIAL_USE[flag.lower()]
    return name


def fields(item, own_label):
    """{"gm_msgid", "gm_thrid", "labels"} of a FETCH response's X-GM items (None where
    it has none); the ids as decimal strings (64-bit: past what JSON readers such as
    jq keep exact), labels decoded, own_label added when not None and left out."""
    if b"X-GM-MSGID" not in item:
        return None
    labels = [_label(label) for label in item.get(b"X-GM-LABELS") or ()]
    if own_label and own_label not in labels:
        labels.append(own_label)
    thrid = item.get(b"X-GM-THRID")
    return {"gm_msgid": str(item[b"X-GM-MSGID"]),
            "gm_thrid": None if thrid is None else str(thrid), "labels": labels}


def _label(value):
    """imapclient gives an atom of digits as an int, NIL as None, and labels as bytes."""
    if value is None:
        return "NIL"
    if isinstance(value, int):
        return str(value)
    return utf7_decode(value) if isinstance(value, bytes) else str(value)


def targets(labels, special, delimiter):
    """The folders of a server without labels that get a copy of a message with labels:
    a message in Spam or Trash goes there alone, any other to each label's folder, or to
    the archive without one.  special: {special-use flag, lowercased: folder name}."""
    hidden = [label for label in HIDDEN if label in labels]
    folders = []
    for label in hidden[:1] or labels or [None]:
        name, use = FOLDER_OF_LABEL.get(label, (label, None)) if label else NO_LABEL
        if use in special:
            name = special[use]
        elif label and label not in FOLDER_OF_LABEL and delimiter:
            name = delimiter.join(name.split("/"))
        if name not in folders:
            folders.append(name)
    return folders


def gmail_target(labels, special):
    """(folder, labels to set) of a message APPENDed to Gmail: Trash or Spam for a
    message with that label, else All Mail; every other label set with STORE."""
    for label, use in (("\\Trash", "\\trash"), ("\\Spam", "\\junk")):
        if label in labels and use in special:
            return special[use], [x for x in labels if x not in HIDDEN]
    return special.get("\\all", "INBOX"), list(labels)


def keyword_target(labels, special):
    """(folder, flags) of a message with labels as one copy on a server without labels
    (imap-append --labels-as-keywords): into Trash or Junk for a message with that
    label, INBOX for one in the Inbox, else the archive; \\Starred and \\Draft as the
    flags \\Flagged and \\Draft, other system labels as keywords $Important, $Sent,
    ..., a user label as a keyword: its name in modified UTF-7, each character an atom
    cannot hold (space, parentheses, quote, ...) as "_"."""
    hidden = [label for label in HIDDEN if label in labels]
    place = hidden[0] if hidden else "\\Inbox" if "\\Inbox" in labels else None
    name, use = FOLDER_OF_LABEL[place] if place else NO_LABEL
    flags = []
    for label in labels:
        if label in FLAG_OF_LABEL:
            flags.append(FLAG_OF_LABEL[label])
        elif label.startswith("\\"):
            flags += [] if label == place else ["$" + label[1:]]
        else:
            flags.append(_NOT_IN_ATOM.sub("_", utf7_encode(label).decode("ascii")))
    return special.get(use, name), flags
