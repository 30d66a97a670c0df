"""A Gmail emulator for tests: a real IMAP server on a loopback port (tests/fake_imap.py's
connection handling and LOGIN) that follows Google's documented IMAP behaviour
(developers.google.com/gmail/imap/imap-extensions):

- CAPABILITY has X-GM-EXT-1 (and UIDPLUS, SPECIAL-USE, no MULTIAPPEND);
- the account holds messages, each with labels; each label is a folder, every message
  not in Spam or Trash is also in "[Gmail]/All Mail", a message in Spam or Trash is in
  that folder alone;
- each folder gives its copy of a message its own UID (from 1 up, in the order the
  message came into the folder), and every copy has the message's X-GM-MSGID and
  X-GM-THRID;
- FETCH X-GM-MSGID, X-GM-THRID and X-GM-LABELS (labels in modified UTF-7, as atoms or
  quoted strings; system labels \\Inbox \\Sent \\Draft \\Important \\Starred \\Spam
  \\Trash); the label of the folder selected is left out, as Gmail leaves it out;
- APPEND to a folder gives the message that folder's label (none for All Mail), so it
  is in All Mail too; \\Flagged is \\Starred; COPY adds the target's label, no message;
  UID STORE +X-GM-LABELS / -X-GM-LABELS change labels (a new label becomes a folder);
  CREATE makes a label; "[Gmail]" is \\Noselect; the special-use folders carry \\All
  \\Sent \\Drafts \\Junk \\Trash \\Flagged \\Important.

    with FakeGmail(sample_account(seed)) as server: ... server.env() ...
"""

import random
import re
from typing import NamedTuple

from fake_imap import UIDVALIDITY, FakeIMAP, Session, literal, quote, sequence
from imapclient.imap_utf7 import decode as utf7_decode
from imapclient.imap_utf7 import encode as utf7

CAPABILITIES = ("IMAP4rev1", "UNSELECT", "ID", "CHILDREN", "X-GM-EXT-1", "UIDPLUS",
                "SPECIAL-USE", "NAMESPACE", "AUTH=PLAIN")
ALL, SPAM, TRASH = "[Gmail]/All Mail", "[Gmail]/Spam", "[Gmail]/Trash"
# folder: (its label, its special-use flag), in LIST order
SYSTEM = {
    "INBOX": ("\\Inbox", None),
    ALL: (None, "\\All"),
    "[Gmail]/Drafts": ("\\Draft", "\\Drafts"),
    "[Gmail]/Important": ("\\Important", "\\Important"),
    "[Gmail]/Sent Mail": ("\\Sent", "\\Sent"),
    SPAM: ("\\Spam", "\\Junk"),
    "[Gmail]/Starred": ("\\Starred", "\\Flagged"),
    TRASH: ("\\Trash", "\\Trash"),
}
HIDING = {"\\Spam", "\\Trash"}  # a message with one of these is in that folder alone
INTERNALDATE = "01-Jul-2005 12:00:00 +0000"
_TOKEN = re.compile(rb'\s*(?:"((?:[^"\\]|\\.)*)"|(\()|(\))|([^\s()"]+))', re.DOTALL)


class Message(NamedTuple):
    data: bytes
    msgid: int
    thrid: int
    labels: set
    flags: list
    date: str


class Account:
    """Messages, labels and each folder's UIDs."""

    def __init__(self):
        self.messages = {}  # msgid: Message
        self.user_labels = []  # user labels, in the order made
        self.uids = {}  # folder: {msgid: uid}
        self.uidnext = {}
        self.next_msgid = 1_600_000_000_000_000_001
        self.refresh()

    def add(self, data, labels=(), flags=(), thrid=None, date=INTERNALDATE):
        msgid = self.next_msgid
        self.next_msgid += 7919  # Gmail's ids are 64-bit and far apart
        labels = set(labels) | ({"\\Starred"} if "\\Flagged" in flags else set())
        flags = list(flags) + (["\\Flagged"] if "\\Starred" in labels and "\\Flagged"
                               not in flags else [])
        self.messages[msgid] = Message(data, msgid, thrid or msgid, labels, flags, date)
        self.label(*sorted(labels))
        return msgid

    def label(self, *labels):
        for name in labels:
            if not name.startswith("\\") and name not in self.user_labels:
                self.user_labels.append(name)
        self.refresh()

    def folders(self):
        return [*SYSTEM, *self.user_labels]

    def holds(self, folder, message):
        hidden = message.labels & HIDING
        if folder == ALL:
            return not hidden
        label = SYSTEM[folder][0] if folder in SYSTEM else folder
        return label in message.labels and (not hidden or label in HIDING)

    def refresh(self):
        """Give each folder's new copies UIDs (in msgid order); forget those gone."""
        for folder in self.folders():
            uids = self.uids.setdefault(folder, {})
            self.uidnext.setdefault(folder, 1)
            for msgid, message in self.messages.items():
                if self.holds(folder, message) and msgid not in uids:
                    uids[msgid] = self.uidnext[folder]
                    self.uidnext[folder] += 1
            for msgid in [m for m in uids if not self.holds(folder, self.messages[m])]:
                del uids[msgid]

    def listing(self, folder):
        """[(uid, Message)] in UID order."""
        return sorted(((uid, self.messages[m]) for m, uid in self.uids[folder].items()),
                      key=lambda pair: pair[0])

    def own_label(self, folder):
        return SYSTEM[folder][0] if folder in SYSTEM else folder


class FakeGmail(FakeIMAP):
    """The emulator: FakeIMAP's connections and logins over an Account."""

    def __init__(self, account=None, **options):
        self.account = account or Account()
        super().__init__({}, capabilities=options.pop("capabilities", CAPABILITIES),
                         **options)

    def folder(self, name):
        return next((f for f in self.account.folders() if utf7(f) == name), None)


class GmailSession(Session):
    def do_list(self, tag, args):
        account = self.server.account
        self.send(b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"\r\n')
        for name in account.folders():
            special = SYSTEM.get(name, (None, None))[1]
            flags = b"\\HasNoChildren" + (b" " + special.encode() if special else b"")
            self.send(b'* LIST (%s) "/" %s\r\n' % (flags, quote(utf7(name))))
        self.send(tag + b" OK Success\r\n")

    def do_status(self, tag, args):
        folder = self.server.folder(_tokens(args)[0])
        if folder is None:
            self.send(tag + b" NO [NONEXISTENT] Unknown Mailbox\r\n")
            return
        account = self.server.account
        self.send(b"* STATUS %s (MESSAGES %d UIDVALIDITY %d UIDNEXT %d)\r\n%s OK Success\r\n"
                  % (quote(utf7(folder)), len(account.uids[folder]), UIDVALIDITY,
                     account.uidnext[folder], tag))

    def do_examine(self, tag, args, mode=b"READ-ONLY"):
        self.selected = self.server.folder(_tokens(args)[0])
        if self.selected is None:
            self.send(tag + b" NO [NONEXISTENT] Unknown Mailbox\r\n")
            return
        account = self.server.account
        self.send(b"* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen)\r\n* %d EXISTS\r\n"
                  b"* 0 RECENT\r\n* OK [UIDVALIDITY %d] UIDs valid.\r\n* OK [UIDNEXT %d] "
                  b"Predicted next UID.\r\n%s OK [%s] Success\r\n"
                  % (len(account.uids[self.selected]), UIDVALIDITY,
                     account.uidnext[self.selected], tag, mode))

    def do_select(self, tag, args):
        self.do_examine(tag, args, b"READ-WRITE")

    def do_close(self, tag, args):
        self.selected = None
        self.send(tag + b" OK Success\r\n")

    do_unselect = do_close

    def do_create(self, tag, args):
        name = utf7_decode(_tokens(args)[0])
        if name in self.server.account.folders():
            self.send(tag + b" NO [ALREADYEXISTS] Duplicate folder name\r\n")
            return
        self.server.account.label(name)
        self.send(tag + b" OK Success\r\n")

    def do_append(self, tag, args):
        tokens = _tokens(args)
        folder = self.server.folder(tokens[0])
        if folder is None:
            self.send(tag + b" NO [TRYCREATE] Folder doesn't exist.\r\n")
            return
        flags = [f.decode() for f in tokens[1]] if isinstance(tokens[1], list) else []
        date = next((t.decode() for t in tokens[1:-1] if isinstance(t, bytes)), INTERNALDATE)
        account = self.server.account
        label = account.own_label(folder)
        msgid = account.add(tokens[-1], [label] if label else [], flags, date=date)
        self.send(b"%s OK [APPENDUID %d %d] (Success)\r\n"
                  % (tag, UIDVALIDITY, account.uids[folder][msgid]))

    def by_uid(self, uids):
        """[(number, uid, Message)] of the selected folder's copies with those UIDs."""
        listing = self.server.account.listing(self.selected)
        last = listing[-1][0] if listing else 0
        wanted = set(sequence(uids, last))
        return [(n, uid, m) for n, (uid, m) in enumerate(listing, 1) if uid in wanted]

    def fetch(self, args, by_uid):
        ids, items = args.split(b" ", 1)
        listing = self.server.account.listing(self.selected)
        if by_uid:
            found = self.by_uid(ids)
        else:
            found = [(n, *listing[n - 1]) for n in sequence(ids, len(listing))]
        return [(n, self.response(n, uid, message, items)) for n, uid, message in found]

    def response(self, number, uid, message, items):
        parts = [b"UID %d" % uid]
        if b"FLAGS" in items:
            parts.append(b"FLAGS (%s)" % " ".join(message.flags).encode())
        if b"INTERNALDATE" in items:
            parts.append(b'INTERNALDATE "%s"' % message.date.encode())
        if b"RFC822.SIZE" in items:
            parts.append(b"RFC822.SIZE %d" % len(message.data))
        if b"X-GM-MSGID" in items:
            parts.append(b"X-GM-MSGID %d" % message.msgid)
        if b"X-GM-THRID" in items:
            parts.append(b"X-GM-THRID %d" % message.thrid)
        if b"X-GM-LABELS" in items:
            parts.append(b"X-GM-LABELS (%s)" % self.labels(message))
        if b"HEADER.FIELDS" in items:
            header = b"".join(re.findall(rb"(?im)^message-id:.*\r\n", message.data)) + b"\r\n"
            parts.append(b"BODY[HEADER.FIELDS (MESSAGE-ID)] " + literal(header))
        elif b"BODY.PEEK[]" in items:
            parts.append(b"BODY[] " + literal(message.data))
        return b"* %d FETCH (%s)\r\n" % (number, b" ".join(parts))

    def labels(self, message):
        own = self.server.account.own_label(self.selected)
        shown = [utf7(label) for label in sorted(message.labels) if label != own]
        return b" ".join(label if re.fullmatch(rb"\\?[A-Za-z0-9&_.-]+", label) else quote(label)
                         for label in shown)

    def do_uid_store(self, tag, args):
        uids, rest = args.split(b" ", 1)
        action, _, value = rest.partition(b" ")
        labels = {utf7_decode(t) for t in _tokens(value)[0]}
        account = self.server.account
        found = self.by_uid(uids)
        for _n, _uid, message in found:
            if action.upper().startswith(b"+X-GM-LABELS"):
                message.labels.update(labels)
            elif action.upper().startswith(b"-X-GM-LABELS"):
                message.labels.difference_update(labels)
            else:
                self.send(tag + b" BAD only X-GM-LABELS here\r\n")
                return
        account.label(*labels)
        for n, uid, message in found:
            if uid in account.uids[self.selected].values():
                self.send(b"* %d FETCH (X-GM-LABELS (%s) UID %d)\r\n"
                          % (n, self.labels(message), uid))
        self.send(tag + b" OK Success\r\n")

    def do_uid_copy(self, tag, args):
        uids, name = args.split(b" ", 1)
        folder = self.server.folder(_tokens(name)[0])
        if folder is None:
            self.send(tag + b" NO [TRYCREATE] Folder doesn't exist.\r\n")
            return
        account = self.server.account
        label = account.own_label(folder)
        for _n, _uid, message in self.by_uid(uids):
            if label:
                message.labels.add(label)
        account.refresh()
        self.send(tag + b" OK Success\r\n")


FakeGmail.session_class = GmailSession


def _tokens(args):
    """The atoms, quoted strings (unquoted) and parenthesized lists of a command's
    arguments, literals already inlined as quoted strings (see fake_imap)."""
    stack = [[]]
    for match in _TOKEN.finditer(args):
        quoted, opening, closing, atom = match.groups()
        if opening:
            stack.append([])
        elif closing:
            done = stack.pop()
            stack[-1].append(done)
        elif quoted is not None:
            stack[-1].append(re.sub(rb"\\(.)", rb"\1", quoted, flags=re.DOTALL))
        else:
            stack[-1].append(atom)
    return stack[0]


USER_LABELS = ["Receipts", "Receipts/2024", "Work", "Travel, 2024", "Ünïcode Ärchiv"]
SYSTEM_LABELS = ["\\Inbox", "\\Sent", "\\Important", "\\Starred", "\\Draft"]


def sample_account(seed, count=63):
    """A Gmail account of count messages with random labels (some none, some in Spam or
    Trash), threads of several messages, and awkward bytes; prints its seed."""
    print(f"sample_account seed: {seed}")
    rng = random.Random(seed)
    account = Account()
    threads = []
    for n in range(count):
        labels = set(rng.sample(SYSTEM_LABELS + USER_LABELS, rng.choice([0, 1, 1, 2, 3])))
        if n % 11 == 5:
            labels = {rng.choice(["\\Spam", "\\Trash"])} | (labels if n % 2 else set())
        thread = rng.choice(threads) if threads and rng.random() < 0.3 else None
        account.add(_sample_message(n, rng), labels,
                    ["\\Seen"] if rng.random() < 0.6 else [], thrid=thread,
                    date=f"{1 + n % 28:02d}-Mar-2024 10:{n % 60:02d}:00 +0100")
        threads.append(account.next_msgid - 7919 if thread is None else thread)
    return account


def _sample_message(n, rng):
    head = b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\n"
    head += b"Subject: message %d\r\n" % n
    if n % 9 != 4:
        head += b"Message-ID: <%d@example.com>\r\n" % (n if n % 13 != 7 else n - 1)
    if n % 10 == 3:  # lines a reader must not take for our headers
        head += b"X-Gmail-Labels: Forged,Inbox\r\nX-GM-THRID: 42\r\nStatus: RO\r\n"
    body = b"From the start\r\n>From quoted\r\n" if n % 7 == 2 else b""
    body += b"x" * rng.randrange(10, 400) + b"\r\n"
    return head + b"\r\n" + body
