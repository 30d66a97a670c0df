"""The IMAP store: every server operation the commands use, each through the
reconnecting session (session.py), as isync's drivers give its sync engine one small
interface.  The commands call only this; imapclient and the wire stay behind it
(transport.py).

A listing is FETCH by sequence number, CHUNK messages at a time, of LISTING_ITEMS: each
response stays bounded whatever the folder's size or its UIDs (a UID SEARCH ALL reply
of 100,000 UIDs near 2**32 is one line of 1.1 MB).  Bodies are fetched with UID FETCH of
BODY_ITEMS, under EXAMINE, so that no flag changes, many at once (bodies.py); the statuses of many
folders are read with one command or several in flight (pipeline.py)."""

import re
from typing import NamedTuple

from .. import errors
from ..diagnostics import server_text
from . import appends, bodies, connection, gmail, listing, listing_ahead, pipeline
from .fetchparse import record_fields, section
from .session import Session

add_options = connection.add_options
Plan = listing.Plan

CHUNK = 2000  # messages per listing FETCH
UID_CHUNK = 20000  # messages per FETCH (UID) of a UID listing: one short line each
STATUS_WINDOW = 500  # STATUS commands in flight, at most (see listing.PLANS)
LISTING_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE",
                 "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]
BODY_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"]
_HEADER = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
_NOT_SELECTABLE = {"\\noselect", "\\nonexistent"}
_DELIMITER = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]")  # RFC 3501 QUOTED-CHAR


class Folder(NamedTuple):
    name: str
    delimiter: str | None
    flags: list  # as the server spelled them, e.g. "\\HasNoChildren"

    @property
    def selectable(self):
        """Whether the folder can hold messages: not a level of the hierarchy only
        (\\Noselect, \\NonExistent)."""
        return not {flag.lower() for flag in self.flags} & _NOT_SELECTABLE


class Selected(NamedTuple):
    """What EXAMINE said of a folder; uidnext is None when the server did not say."""

    uidvalidity: int
    uidnext: int | None
    exists: int
    highestmodseq: int | None = None  # where the server has CONDSTORE (RFC 7162)


class Status(NamedTuple):
    messages: int | None
    uidvalidity: int | None
    uidnext: int | None
    highestmodseq: int | None = None


class Fetched(NamedTuple):
    """One message of a FETCH response, its size, flags and INTERNALDATE as a record
    carries them (fetchparse.record_fields), left_out what the server sent that no
    record can carry, for a warning.  header: the Message-ID header section of a
    listing; body: the message of a body FETCH; either None when not asked for."""

    uid: int
    size: int | None
    flags: list
    internaldate: str | None
    left_out: list
    header: bytes | None
    body: bytes | None
    gmail: dict | None = None  # gmail.fields of a Gmail listing
    modseq: int | None = None  # asked for where the server has CONDSTORE


def _fetched(uid, item, own_label=None):
    fields, left_out = record_fields(item)
    sections = {section(key): value for key, value in item.items()}
    modseq = item.get(b"MODSEQ")
    return Fetched(uid, fields["size"], fields["flags"], fields["internaldate"], left_out,
                   sections.get(_HEADER), sections.get(b"BODY[]"), gmail.fields(item, own_label),
                   modseq=modseq[0] if isinstance(modseq, tuple) and modseq and
                   isinstance(modseq[0], int) else None)


class Store:
    """One account on one server, through one session: its operations are the only way
    the commands reach the server."""

    def __init__(self, options, prog, lazy=False):
        """lazy: log in at the first operation, not now (see Session)."""
        self.session = Session(options, prog, lazy)
        self._condstore = None
        # Body FETCHes in flight, their answers in order (bodies.py).
        self.bodies = bodies.BodyQueue(self.session, BODY_ITEMS, _fetched)
        self._gmail = self._writable = None  # the folder add_labels SELECTed last

    @property
    def reconnects(self):
        return self.session.reconnects

    def close(self):
        self.session.close()

    def log_in(self):
        """Log in now, where the session waits for its first operation (lazy)."""
        self.session.call(lambda _client: None)

    def has_capability(self, name):
        return self.session.call(lambda client: client.has_capability(name))

    @property
    def condstore(self):
        """Whether the server offers CONDSTORE: then STATUS and listings ask for
        HIGHESTMODSEQ and MODSEQ."""
        if self._condstore is None:
            self._condstore = bool(self.has_capability("CONDSTORE"))
        return self._condstore

    @property
    def qresync(self):
        """Whether VANISHED comes with CHANGEDSINCE: the options asked to ENABLE QRESYNC
        (options.qresync), the server offers it and did not refuse the ENABLE."""
        return bool(getattr(self.session.options, "qresync", False)) and self.session.call(
            lambda c: c.has_capability("QRESYNC") and not c.refused_enable())

    @property
    def gmail(self):
        """Whether the server is Gmail (X-GM-EXT-1): listings then carry its ids and
        labels (see gmail.py)."""
        if self._gmail is None:
            self._gmail = self.has_capability(gmail.CAPABILITY)
        return self._gmail

    def folders(self):
        """(a Folder per LIST entry, [(name, why)] for the folders no record can carry:
        a name that is not valid modified UTF-7, shown as the server sent it with
        non-ASCII bytes as \\xNN, or a delimiter that is not one 7-bit character other
        than CR, LF and NUL (RFC 3501 QUOTED-CHAR))."""
        return _folders(self.session.call(lambda c: c.list_folders()))

    def folders_and_statuses(self):
        """(folders, unreadable) as folders() gives them, and {name: Status} of folders
        listed, read with them in one command, LIST-STATUS (RFC 5819), where the server
        offers it; {} where it does not (or refuses that LIST).  The return options
        CHILDREN (RFC 5258) and SPECIAL-USE (RFC 6154) ask for the flags a plain LIST
        gives.  The listing sent behind the login (listing_ahead.py) is its answer where
        it asked the same."""
        command = listing_ahead.list_status_command(self.has_capability)
        def operation(client):
            answer = listing_ahead.answer(client, command, client.has_capability)
            if answer is False:
                self.session.restart()
                return operation(self.session.client)
            if command is None:
                return None
            if answer is None:
                wire = pipeline.Wire(client)
                wire.send([command])
                answer = wire.answer()
            if answer.status != "OK":
                return None
            return pipeline.listed(client, answer), pipeline.statuses(answer)

        found = self.session.call(operation)
        if found is None:
            return (*self.folders(), {})
        return (*_folders(found[0]), {name: _status(status) for name, status in found[1]
                                      if isinstance(name, str)})

    def status(self, name):
        status = self.session.call(lambda client: client.folder_status(
            name, self.status_items().split()))
        return _status(status)

    def status_items(self):
        """What STATUS (and LIST-STATUS) asks: HIGHESTMODSEQ too, with CONDSTORE."""
        return pipeline.status_items(self.condstore)

    def statuses(self, names):
        """{name: Status, or the ServerError of a folder the server refused} for each of
        names: STATUS commands sent STATUS_WINDOW at a time, their answers read as they
        come."""
        found = {}
        for first in range(0, len(names), STATUS_WINDOW):
            found.update(self._statuses(names[first:first + STATUS_WINDOW]))
        return found

    def _statuses(self, names):
        items = self.status_items()

        def operation(client):
            wire = pipeline.Wire(client)
            wire.send([("STATUS", wire.folder(name), f"({items})") for name in names])
            found = {}
            with wire.shut_on_failure():
                for name in names:
                    answer = wire.answer()
                    if answer.status != "OK":
                        found[name] = errors.ServerError(answer.refusal("STATUS", "status"))
                        continue
                    # The server's spelling of the name may differ (INBOX in any case).
                    said = pipeline.statuses(answer)
                    found[name] = _status(said[-1][1] if said else {})
            return found

        return self.session.call(operation)

    def examine(self, name):
        self._writable = None
        return _selected(self.session.examine(name), self.condstore)

    def unselect(self):
        """Leave the folder examined last (see Session.unselect)."""
        self.session.unselect()

    def listing(self, selected, since=None, own_label=None):
        """Yield a Fetched (with header) per message of the folder examined last, in UID
        order, only those from UID since on if given; on Gmail with its ids and labels,
        own_label added (gmail.fields).  After a reconnect the listing goes on from the
        next chunk, skipping UIDs already given."""
        items = LISTING_ITEMS + gmail.ITEMS if self.gmail else LISTING_ITEMS
        items = items + ["MODSEQ"] if self.condstore else items
        start, last_uid = 1, 0
        if since is not None:
            start, last_uid = self._first_new(selected, since), since - 1
        for first in range(start, selected.exists + 1, CHUNK):
            numbers = range(first, min(first + CHUNK - 1, selected.exists) + 1)
            response = self.session.call(lambda c, numbers=numbers: _by_number(c, numbers,
                                                                                  items))
            # A response without a UID answers none of ours: flags of a message whose own
            # response never came (a server that sends EXPUNGE during FETCH, against
            # RFC 3501).
            for item in sorted((r for r in response.values() if b"UID" in r),
                               key=lambda r: r[b"UID"]):
                if item[b"UID"] > last_uid:
                    last_uid = item[b"UID"]
                    yield _fetched(last_uid, item, own_label)

    def uids(self, selected):
        """Yield the UIDs of the folder examined last (selected), ascending: FETCH (UID)
        by sequence number, UID_CHUNK messages at a time (see the head of this file)."""
        for first in range(1, selected.exists + 1, UID_CHUNK):
            numbers = range(first, min(first + UID_CHUNK - 1, selected.exists) + 1)
            response = self.session.call(lambda c, numbers=numbers: _by_number(c, numbers,
                                                                                  ["UID"]))
            yield from sorted(r[b"UID"] for r in response.values() if b"UID" in r)

    def listings(self, plans, own_labels):
        """Yield a listing.Listing per Plan, in order, their commands in flight up to
        listing.WINDOW messages ahead: its selected (a Selected) or error, the checked
        Fetched, then messages() (Fetched with header) as listing() gives them, on Gmail
        with own_labels[name] (or the name) as the folder's label, then changes() where
        the plan has changed_since."""
        items = LISTING_ITEMS + gmail.ITEMS if self.gmail else LISTING_ITEMS
        items = items + ["MODSEQ"] if self.condstore else items

        def fetched_in(plan):
            own_label = own_labels.get(plan.name, plan.name)
            return lambda uid, item: _fetched(uid, item, own_label)

        condstore = self.condstore
        return listing.listings(self.session, plans, items,
                                (lambda said: _selected(said, condstore), fetched_in), CHUNK,
                                self.qresync)

    def _first_new(self, selected, since):
        """The sequence number to list from so as to reach every UID from since on.  UIDs
        grow with sequence numbers, so with a true UIDNEXT those messages are the last
        UIDNEXT - since; but some servers' UIDNEXT lags behind their messages.  The
        server is asked whether the message before holds a UID below since; if it does
        not (or it is gone), the listing starts at 1 and the UIDs below since are left
        out."""
        start = max(1, selected.exists - (selected.uidnext - since) + 1)
        if start == 1:
            return 1
        before = self.session.call(lambda c: _by_number(c, [start - 1], ["UID"]))
        return start if before.get(start - 1, {}).get(b"UID", since) < since else 1

    def add_labels(self, folder, uids, labels):
        """UID STORE +X-GM-LABELS labels to the messages with uids in folder (SELECTed:
        imap-append's own folder, after it appended them)."""
        def operation(client):
            if self._writable != folder:
                client.select_folder(folder)
                self._writable = folder
            client.add_gmail_labels(uids, labels, silent=True)

        self.session.call(operation)

    def create(self, name):
        """CREATE name: True, or False where the folder is there already.  A server
        that creates the parents of a folder with it (Cyrus, Gmail, Exchange) answers a
        later CREATE of a parent with NO, [ALREADYEXISTS] or bare, so after any NO the
        folder is listed before the NO counts.  After a dropped connection it is listed
        first, and created only if it still does not exist."""
        tries = []

        def operation(client):
            if tries and _selectable(client, name):
                return False
            tries.append(name)
            try:
                client.create_folder(name)
                return True
            except Exception as exc:
                if not appends.refusal(exc):
                    raise
                if _selectable(client, name):
                    return False
                raise errors.ServerError(f"{name}: cannot create it: "
                                         f"{server_text(exc)}") from None

        return self.session.call(operation)

    def append(self, folder, messages, landed):
        """APPEND messages (each with .wire, .flags, .date) to folder in one command,
        MULTIAPPEND for several.  Returns {position: (uidvalidity, uid)} for those the
        server's APPENDUID numbered.  After a dropped connection, landed(messages)
        tells, for each message still pending, whether the folder got it before the
        drop; only the others are sent again, so none is appended twice."""
        pending = list(range(len(messages)))
        tries = []

        def operation(_client):
            nonlocal pending
            if tries:
                arrived = landed([messages[i] for i in pending])
                pending = [i for i, got in zip(pending, arrived, strict=True) if not got]
            tries.append(folder)
            if not pending:
                return {}
            # landed() may have reconnected: the session's client is the current one.
            return appends.batch(self.session.client, folder, pending, messages)

        return self.session.call(operation)


def _folders(listed):
    folders, unreadable = [], []
    for raw_flags, delimiter, name in listed:
        if isinstance(name, bytes):
            unreadable.append((name.decode("ascii", "backslashreplace"), "the server's "
                               "name for this folder is not valid modified UTF-7"))
            continue
        if delimiter is not None and not (isinstance(delimiter, bytes)
                                          and _DELIMITER.fullmatch(delimiter)):
            unreadable.append((name, f"the server's hierarchy delimiter for this folder "
                                     f"({server_text(delimiter)}) is not one 7-bit "
                                     f"character"))
            continue
        folders.append(Folder(name, delimiter and delimiter.decode(),
                              [_text(f) for f in raw_flags]))
    return folders, unreadable


def _selected(said, condstore):
    """Selected from EXAMINE's answer; its HIGHESTMODSEQ only where the server offers
    CONDSTORE: one that does not may say it all the same (a Dovecot told to hide it, for
    a folder whose changes any session asked for), and would refuse CHANGEDSINCE."""
    modseq = said.get(b"HIGHESTMODSEQ")
    return Selected(said[b"UIDVALIDITY"], said.get(b"UIDNEXT"), said[b"EXISTS"],
                    modseq if condstore and isinstance(modseq, int) else None)


def _status(items):
    modseq = items.get(b"HIGHESTMODSEQ")
    return Status(items.get(b"MESSAGES"), items.get(b"UIDVALIDITY"), items.get(b"UIDNEXT"),
                  modseq if isinstance(modseq, int) else None)


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _selectable(client, name):
    """Whether LIST shows name as a folder that can hold messages (Folder.selectable)."""
    return any(listed == name and Folder(name, None, [_text(f) for f in flags]).selectable
               for flags, _delimiter, listed in client.list_folders("", name))


def _by_number(client, numbers, items=LISTING_ITEMS):
    client.use_uid = False
    try:
        return client.fetch(numbers, items)
    finally:
        client.use_uid = True
