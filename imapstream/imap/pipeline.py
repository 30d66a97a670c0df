"""Commands in flight on one connection (RFC 3501, 5.5): sent without waiting for the
answers before them, in one write, and answered in the order they went out.  imapclient
waits for each answer; this sits beside it on the same imaplib connection.

A command's answer is its tagged response with the untagged responses read since the
tagged response before it.  The commands sent here are EXAMINE, FETCH, UID FETCH,
STATUS and LIST, each answered after the one before it: a FETCH depends on the mailbox
the EXAMINE before it selected, and a server may run two commands at once only where
their responses cannot be told apart by order (isync's drv_imap relies on the same).
FETCH responses are still matched by UID or sequence number, so that a response nobody
asked for is dropped, not taken for a message.

Private API (see transport.py): imaplib's _command, _get_tagged_response, _check_bye,
send, state, is_readonly and untagged_responses; IMAPClient's _imap, _normalise_folder
and _proc_folder_list."""

import collections
import contextlib
from typing import NamedTuple

from imapclient.response_parser import parse_response

from ..diagnostics import server_text
from . import fetchparse, listparse, transport

STATUS_ITEMS = "MESSAGES UIDNEXT UIDVALIDITY"


def status_items(condstore):
    """What STATUS (and LIST-STATUS) asks: HIGHESTMODSEQ too, with CONDSTORE."""
    return STATUS_ITEMS + (" HIGHESTMODSEQ" if condstore else "")


class Answer(NamedTuple):
    status: str  # "OK", "NO" or "BAD"
    data: list  # what the tagged response says after its status, as imaplib gives it
    untagged: dict  # imaplib's untagged responses read with it: {TYPE: [data]}

    def refusal(self, command, method):
        """What the server said to a command it did not carry out, worded as imaplib
        (BAD) and imapclient's method (NO) word it: "STATUS command error: BAD [b'...']",
        "status failed: ..."."""
        if self.status == "BAD":
            return server_text(f"{command} command error: BAD {self.data}")
        said = self.data[0] if self.data else b""
        if isinstance(said, bytes):
            said = said.decode("utf-8", "replace")
        return server_text(f"{method} failed: {said}")


class Wire:
    """The commands in flight on client's connection, oldest first."""

    def __init__(self, client):
        self.client, self.imap = client, client._imap
        self.tags = collections.deque()

    def __len__(self):
        return len(self.tags)

    def send(self, commands):
        """Send commands, each (name, *arguments) as imaplib takes them, in one write."""
        pieces = []
        self.imap.send = pieces.append  # imaplib's _command writes a command in one send
        try:
            for name, *args in commands:
                if name == "EXAMINE":  # so that imaplib lets FETCH follow before the answer
                    self.imap.state, self.imap.is_readonly = "SELECTED", True
                self.tags.append(self.imap._command(name, *args))
        finally:
            del self.imap.send
        if pieces:
            self.imap.send(b"".join(pieces))

    def answer(self):
        """The Answer to the oldest command in flight."""
        tag = self.tags.popleft()
        status, data = self.imap._get_tagged_response(tag)
        self.imap._check_bye()
        untagged, self.imap.untagged_responses = self.imap.untagged_responses, {}
        return Answer(status, data, untagged)

    def folder(self, name):
        """A folder name as a command argument (modified UTF-7, quoted)."""
        return self.client._normalise_folder(name)

    @contextlib.contextmanager
    def shut_on_failure(self):
        """On a failure while commands are still in flight, shut the connection: what
        the server sends next answers commands nobody waits for (and LOGOUT would wait
        behind them)."""
        try:
            yield
        except BaseException:
            if self.tags:
                with contextlib.suppress(OSError):
                    self.client.shutdown()
            raise


def examine_command(wire, name):
    return ("EXAMINE", wire.folder(name))


def fetch_command(numbers, items, by_uid):
    sequence_set = transport.number_set(numbers)
    if by_uid:
        return ("UID", "FETCH", sequence_set, _items(items))
    return ("FETCH", sequence_set, _items(items))


def _items(items):
    return "(" + " ".join(items) + ")"


def selected(client, answer, name):
    """EXAMINE's answer as IMAPClient.select_folder gives it (transport.Client checks)."""
    return client.selected_response(name, answer.untagged)


def fetched(answer, wanted, by_uid):
    """{number: items} of a FETCH answer for the numbers wanted (see Client.fetch)."""
    return _parsed("FETCH", fetchparse.fetched_items, answer.untagged.get("FETCH", []),
                   wanted, by_uid)


def statuses(answer):
    """[(name, {b"MESSAGES": n, ...})] of the STATUS responses in an answer (to STATUS,
    or LIST-STATUS); name is a str, or the bytes the server sent where they are not
    valid modified UTF-7 (see Client.list_folders)."""
    data = [d for d in answer.untagged.get("STATUS", []) if d not in (b"", None)]
    parsed = listparse.statuses(data)
    if parsed is None:
        parsed = _parsed("STATUS", parse_response, data)
    if len(parsed) % 2:
        raise transport.ProtocolViolation("malformed STATUS response from the server")
    found = []
    for name, items in zip(parsed[0::2], parsed[1::2], strict=True):
        if not isinstance(items, tuple) or len(items) % 2:
            raise transport.ProtocolViolation(f"malformed STATUS response from the server: "
                                              f"{server_text(items)}")
        status = {_upper(key): value for key, value in zip(items[0::2], items[1::2],
                                                            strict=True)}
        if not all(isinstance(value, int) for value in status.values()):
            raise transport.ProtocolViolation(f"malformed STATUS response from the server: "
                                              f"{status}")
        # An all-digit name is a number to the parser, as to IMAPClient.list_folders.
        found.append((str(name) if isinstance(name, int) else transport.folder_name(name),
                      status))
    return found


def _upper(key):
    return key.upper() if isinstance(key, bytes) else key


def listed(client, answer):
    """LIST's answer as (flags, delimiter, name) tuples (see Client.list_folders)."""
    data = answer.untagged.get("LIST", [])
    folders = listparse.folders(data)
    if folders is None:
        encode, client.folder_encode = client.folder_encode, False
        try:
            folders = _parsed("LIST", client._proc_folder_list, data)
        finally:
            client.folder_encode = encode
    return [(flags, delimiter, transport.folder_name(name)) for flags, delimiter, name in folders]


def _parsed(command, method, *args):
    try:
        return method(*args)
    except (transport.ProtocolError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise transport.ProtocolViolation(f"malformed {command} response from the server: "
                                          f"{exc}") from None
