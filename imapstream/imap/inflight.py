"""Commands in flight over the session's connection, each in a folder: sent without
waiting for the answers before them, an EXAMINE sent before each command whose folder
is not the one the EXAMINE before selects, and the answers read one at a time, oldest
first (pipeline.py).  The owner bounds what is in flight.

A server may run FETCH commands in the same mailbox at once (Dovecot does): a FETCH
response read before one command's tagged response may answer a later one.  So each
command has a key, the numbers it asks for (UIDs under UID FETCH, else sequence
numbers), and takes the FETCH responses with those numbers; the others are kept for the
commands after it, until the next EXAMINE (which a server runs alone), as isync's
drv_imap matches FETCH responses to the commands in flight by UID.  VANISHED responses
(QRESYNC) go, the same way, to the next command that asks for them.

After a dropped connection the session reconnects (EXAMINEs the folder whose EXAMINE
was answered last and checks its UIDVALIDITY) and everything not yet answered is sent
again, as rebuild() makes it anew if given (fewer messages per FETCH, say).  A refusal
that says a limit is reached (errors.server_limit) is the session's to wait for or
stop at, the command not yet answered."""

import collections
import re
from typing import NamedTuple

from .. import errors
from . import pipeline
from .fetchparse import split_responses

_UID = re.compile(rb"[( ]UID (\d+)")


class Entry:
    def __init__(self, folder, command, key=()):
        """command: (name, *arguments) as pipeline.Wire.send takes it; key: the numbers
        it asks for (a set or a range)."""
        self.folder, self.command, self.key = folder, command, key
        self.examine = False  # sent behind an EXAMINE of folder even if it is selected
        self.sent = self.examines = False  # on the wire; behind an EXAMINE of folder
        self.selected = None  # the answer to that EXAMINE, once read


class Reply(NamedTuple):
    """The answer to an entry.  selected: IMAPClient's dict of the EXAMINE sent with it
    (None if none was); uidvalidity: the folder's, None where the server refused to
    open it; error: that refusal (with the entry the EXAMINE went with) or the
    command's; said: the command's pipeline.Answer, None when the folder is not open."""

    entry: Entry
    selected: dict | None
    uidvalidity: int | None
    error: errors.ServerError | None
    said: pipeline.Answer | None


class InFlight:
    def __init__(self, session, rebuild=None):
        self.session, self.rebuild = session, rebuild
        self.entries = collections.deque()
        self.wire = None
        self.wire_folder = None  # what the last EXAMINE sent selects
        self.selected = (None, None)  # (folder, UIDVALIDITY or None) as answered last
        self.kept = []  # FETCH responses read and not claimed yet, in this folder
        self.vanished = []  # VANISHED responses read, for the next command asking them

    def __len__(self):
        return len(self.entries)

    def add(self, entry):
        self.entries.append(entry)

    def send(self):
        """Send the entries added since."""
        self.session.call(self._send)

    def answer(self, on_retry=None):
        """The Reply to the oldest entry; on_retry() runs before each retry."""
        try:
            return self.session.call(self._answer, on_retry)
        except errors.ServerError as exc:  # raised by the session: its reconnect failed
            entry = self.entries.popleft()
            self.session.folder, self.selected = None, (None, None)
            return Reply(entry, entry.selected, None, exc, None)

    def clear(self):
        """Read the answers in flight and drop them, and every entry with them."""
        def drop(client):
            if self.wire is not None and self.wire.client is client:
                with self.wire.shut_on_failure():
                    while len(self.wire):
                        self.wire.answer()
            self.entries.clear()

        self.session.call(drop)
        self.wire_folder, self.selected, self.kept, self.vanished = None, (None, None), [], []

    def _send(self, client):
        if self.wire is None or self.wire.client is not client:
            # A new connection, with nothing in flight: the session has EXAMINEd the
            # folder whose EXAMINE was answered last, if any.
            self.wire, self.wire_folder = pipeline.Wire(client), self.session.folder
            self.kept, self.vanished = [], []
            self.selected = (self.session.folder, self.session.uidvalidity)
            if self.rebuild:
                self.entries = collections.deque(self.rebuild(list(self.entries)))
            for entry in self.entries:
                entry.sent = False
        commands = []
        for entry in self.entries:
            if entry.sent:
                continue
            entry.sent = True
            entry.examines = entry.examine or entry.folder != self.wire_folder
            if entry.examines:
                commands.append(("EXAMINE", self.wire.folder(entry.folder)))
                self.wire_folder = entry.folder
            commands.append(entry.command)
        self.wire.send(commands)

    def _answer(self, client):
        self._send(client)
        with self.wire.shut_on_failure():
            return self._read(client)

    def _read(self, client):
        entry, error = self.entries[0], None
        if entry.examines:
            said = self.wire.answer()
            self.kept, self.vanished = [], []
            if said.status == "OK":
                entry.selected = client.selected_response(entry.folder, said.untagged)
                self.selected = (entry.folder, entry.selected[b"UIDVALIDITY"])
                self.session.folder, self.session.uidvalidity = self.selected
            else:
                self.selected = (entry.folder, None)
                self.session.folder = None
                error = errors.ServerError(f"{entry.folder}: "
                                           f"{said.refusal('EXAMINE', 'select')}")
        said = self._claimed(entry, self.wire.answer())
        if said.status != "OK" and errors.server_limit(said.refusal("FETCH", "fetch")):
            import imaplib  # loaded already, by the session

            # The server's limit: the session waits and sends the entry again, or stops.
            raise imaplib.IMAP4.error(said.refusal("FETCH", "fetch"))
        self.entries.popleft()
        uidvalidity = self.selected[1]
        if uidvalidity is None:  # a command in a folder the server did not open
            return Reply(entry, entry.selected, None, error, None)
        if said.status != "OK":
            error = errors.ServerError(f"{entry.folder}: {said.refusal('FETCH', 'fetch')}")
        return Reply(entry, entry.selected, uidvalidity, error, said)

    def _claimed(self, entry, said):
        """said with the FETCH responses whose numbers are entry's, those kept from the
        answers before it included, and those without a number (for the parser to
        judge); the others are kept."""
        by_uid = entry.command[0] == "UID"
        mine, self.kept = [], [*self.kept, *split_responses(said.untagged.get("FETCH", []))]
        kept = []
        for response in self.kept:
            number = _number(response, by_uid)
            (mine if number is None or number in entry.key else kept).append(response)
        self.kept = kept
        untagged = dict(said.untagged, FETCH=[p for r in mine for p in r])
        self.vanished += untagged.pop("VANISHED", [])
        if "VANISHED" in entry.command[-1]:  # CHANGEDSINCE with VANISHED (changes.py)
            untagged["VANISHED"], self.vanished = self.vanished, []
        return said._replace(untagged=untagged)


def _number(response, by_uid):
    """The UID (by_uid) or sequence number of a FETCH response, as imaplib keeps it
    (["12 (UID 7 ...", (head, literal), ...]); None where it has none."""
    heads = [part[0] if isinstance(part, tuple) else part for part in response]
    if not by_uid:
        number = heads[0].split(b" ", 1)[0]
        return int(number) if number.isdigit() else None
    for head in heads:
        found = _UID.search(head)
        if found:
            return int(found.group(1))
    return None
