"""mbox files on disk: reading (plain, .gz, .bz2, .xz), what a file holds, and
appending under a lock.  Files are created 0600 and directories 0700."""

import hashlib
import os
import stat
from collections import Counter, defaultdict
from datetime import datetime

from ..errors import DataError
from ..message import header_section, message_id
from . import compression, flagjournal, sidecar
from .flagheaders import stored_flags
from .mboxrd import MboxError, parse_held, parse_message
from .scan import (
    CutStream,
    HeldScan,
    Prefix,
    Suffixed,
    TornTail,
    complete_streams_end,
    missing_gzip_trailer,
    spans,
)
from .uidranges import generation as _generation


def open_for_reading(path):
    return compression.reading(open(path, "rb"), compression.suffix_of(path))


def iter_messages(f, name):
    """Yield (offset, record, data) per message of an mbox stream; the record has the
    message's Message-ID.  A torn last message raises TornTail after the others (see
    scan.spans for what counts as last)."""
    for buf, start, end, offset, last in spans(f, name):
        with memoryview(buf) as view, view[start:end] as text:
            copy = bytes(text)
        try:
            yield _parse(name, offset, copy, last)
        except MboxError:
            raise TornTail(name, offset) from None


def _parse(name, offset, text, last=False):
    try:
        record, data = parse_message(text, last)
    except MboxError as exc:
        if last:
            raise
        raise DataError(f"{name}: message at byte {offset}: {exc}") from None
    record["message_id"] = message_id(header_section(data))
    return offset, record, data


def scan(path, name=None):
    """iter_messages over a file, plain or compressed (an empty file holds nothing)."""
    if os.path.getsize(path) == 0:
        return
    with open_for_reading(path) as f:
        yield from iter_messages(f, name or path)


def message_at(path, offset):
    """(record, data) of the message that begins at offset (uncompressed, as held
    records give it) of the mbox file at path; None if no message begins there."""
    with open_for_reading(path) as f:
        if compression.suffix_of(path):
            while offset and (chunk := f.read(min(offset, 1 << 20))):
                offset -= len(chunk)
        else:
            f.seek(offset)
        for _offset, record, data in iter_messages(f, path):
            return record, data
    return None


def _record_key(record):
    """What identifies a message when only its record is known: Message-ID, size and
    INTERNALDATE (as an instant), so that messages without a Message-ID, or sharing
    one, are told apart by more than their size."""
    date = record.get("internaldate")
    try:
        instant = int(datetime.fromisoformat(date).timestamp()) if date else None
    except (TypeError, ValueError):
        instant = None
    return record.get("message_id"), record.get("size"), instant


def _may_be(own, generation):
    """Whether a message of generation own, not held by its UID, may be one held in
    generation: the same folder under another UIDVALIDITY (any, own (folder, None)),
    or a message from a foreign mbox (no generation); any held message, for one
    without a generation.  A copy in another folder is another message: it is stored
    again, count for count."""
    return own is None or generation is None or generation != own and generation[0] == own[0]


def digest(data):
    return hashlib.sha1(data, usedforsecurity=False).digest()


def same_message(record, held):
    """Whether a record agrees with a held message's record (see _agree)."""
    return _agree(record, _record_key(held))


def _agree(record, key):
    """Whether a record agrees with a held message's _record_key where both say: the
    Message-ID (if the record has the key), the size and INTERNALDATE (if both have one)."""
    message_id, size, instant = _record_key(record)
    return (("message_id" not in record or message_id == key[0])
            and all(a is None or b is None or a == b
                    for a, b in ((size, key[1]), (instant, key[2]))))


class Holdings:
    """What one mbox file holds.  A message is held if its folder, UIDVALIDITY and UID
    are, for a message that agrees with the record (see _agree); otherwise it is
    matched by content against the messages of its folder's other generations
    (UIDVALIDITYs; all of them, its own too, where its UID is held for another message:
    a server restored from a backup gives held UIDs to new messages) and foreign ones
    (all messages, for one without a generation), each matching at most once: by
    Message-ID, size and INTERNALDATE when
    only a record is known, by digest when the bytes are."""

    def __init__(self, path, name=None, keep_index=False):
        """keep_index: the caller holds the file's lock (mbox-merge), so the holdings
        may write its sidecar (see sidecar.py) after a scan."""
        self.path, self.name = path, name or path
        self._uids = self._by_id = None  # built when first asked (see _build_keys)
        self._added = []  # records given to add_uid
        self.by_digest = None
        self.torn_at = self.cut_stream = self.trailer = None
        self.unmatched = []  # (offset, reason): messages of ours read as foreign ones
        self.marks = {}  # folder checkpoints given in this visit, for the sidecar
        self._journal = None  # read when first asked for
        self._state = {}  # {key: what held_state gives}, made when first asked for
        self.journal_lines = []  # updates noted in this visit, for the journal
        self.index = sidecar.Index(None, 0, 0, [])
        if os.path.exists(path):
            self.index = self._read_index(sidecar.load(path), keep_index)
        self.appended, self.appended_end = [], self.index.end

    def records(self):
        """(offset, record) per held message, in file order, with the flags and
        missing_since of the flag journal (flagjournal.py)."""
        return ((row[0], self.journal.apply(sidecar.record(row))) for row in self.index.rows)

    @property
    def journal(self):
        if self._journal is None:
            self._journal = flagjournal.read(self.path)
        return self._journal

    def held_state(self, record):
        """{"flags", and "missing_since" if known} the file holds now for the message
        with record's folder, UIDVALIDITY and UID, the journal applied; None if none
        is held by them."""
        found = flagjournal.key(record)
        if found is None or ((found[0], found[1]), found[2]) not in self.index.held:
            return None
        state = self._state.get(found)
        if state is None:
            row = self.index.row(found, record.get("delimiter"))
            if row is None:
                return None
            state = self._state[found] = {"flags": row[sidecar.FLAGS] or [],
                                          **self.journal.entries.get(found, {})}
        return state

    def note_update(self, record):
        """Note an update record (imapstream(7)) for the journal where it tells the file
        something new: flags other than the message's now, or a message first seen
        missing.  Returns whether it did."""
        state = self.held_state(record)
        if state is None:
            return False
        if record.get("update") == "flags":
            flags = stored_flags(record.get("flags") or [])
            if set(flags) == set(state["flags"]):
                return False
            state["flags"] = flags
            self.journal_lines.append(flagjournal.line(dict(record, flags=flags), "flags"))
            return True
        if "missing_since" in state or not isinstance(record.get("missing_since"), str):
            return False
        state["missing_since"] = record["missing_since"]
        self.journal_lines.append(flagjournal.line(record, "missing_since"))
        return True

    def _read_index(self, known, keep):
        """An Index of the file: the rows of known while it still describes the file,
        and those of a scan of the rest (all of it without known); saved if keep."""
        with open(self.path, "rb") as raw:
            fd = raw.fileno()
            st = os.fstat(fd)
            regular = stat.S_ISREG(st.st_mode)
            if known is None or not regular or not known.describes(fd, st):
                known = sidecar.Index(None, 0, 0, [])
            folders = {**known.folders, **self.marks}
            compressed = compression.suffix_of(self.path)
            if known.base:
                known.base.fallback = lambda: self._scan_rows(compressed, known.raw_end)
            if st.st_size == known.raw_end:
                return known.grown(fd, st, known.raw_end, known.end, [], folders)
            scan = HeldScan(raw, compressed, self.name, known.raw_end, known.end)
            rows = []
            try:
                for offset, record in scan:
                    rows.append(sidecar.row(offset, record))
            except TornTail:
                self.torn_at = scan.torn_at
            except CutStream:
                return self._complete_streams(raw, fd, st, compressed, folders)
            except DataError:
                if not known.raw_end:
                    raise
                return self._read_index(None, keep)  # the rest did not scan: read it all
            self.unmatched = scan.unmatched
            raw_end = raw.tell() if compressed else scan.end
            index = known.grown(fd, st, raw_end, scan.end, rows, folders)
            if keep and regular and not (compressed and self.torn_at is not None):
                sidecar.save(self.path, index)
            return index

    def _scan_rows(self, compressed, raw_end):
        """The rows of the file's first raw_end bytes, for a sidecar whose rows did not
        check."""
        with open(self.path, "rb") as raw:
            return [sidecar.row(offset, record) for offset, record
                    in HeldScan(Prefix(raw, raw_end), compressed, self.name)]

    def _complete_streams(self, raw, fd, st, compressed, folders):
        """The index of the complete members or streams of a compressed file whose last
        one is cut short; cut_stream is where they end, for mbox-merge to cut there.  A
        last gzip member that lacks only its trailer holds all its messages: trailer is
        what mbox-merge appends to make it whole."""
        end = complete_streams_end(raw, compressed)
        self.trailer = missing_gzip_trailer(raw, end) if compressed == ".gz" else None
        if self.trailer is not None:  # whole but for its trailer: every message is held
            scan = HeldScan(Suffixed(raw, self.trailer), compressed, self.name)
            rows = [sidecar.row(offset, record) for offset, record in scan]
            return sidecar.Index.of(fd, st, st.st_size, scan.end, rows, folders)
        self.cut_stream = end
        scan = HeldScan(Prefix(raw, self.cut_stream), compressed, self.name)
        # None complete (a crash in the first append) leaves nothing to scan; bz2 and
        # lzma would take no bytes at all for a stream cut short.
        rows = [sidecar.row(offset, record) for offset, record in scan] \
            if self.cut_stream else []
        self.unmatched = scan.unmatched
        return sidecar.Index.of(fd, st, self.cut_stream, scan.end, rows, folders)

    def unmatched_reports(self):
        """One line per message of ours read as a foreign one (see mboxrd.parse_message)."""
        return [f"{self.name}: message at byte {offset}: {reason}; kept, as a copy of no "
                f"message on the server" for offset, reason in self.unmatched]

    def add_appended(self, text):
        """Note a message just appended as text (formatted), for save_index."""
        self.appended.append(sidecar.row(self.appended_end, parse_held(text, 0, len(text))))
        self.appended_end += len(text)

    def checkpoint(self, checkpoint):
        """Note a records.Checkpoint that vouches for its folder, given after the
        folder's messages, each held now (see imapstream(7)).  One listed from since on
        counts only where the file has the folder's UIDs below since, and never moves
        the folder's uidnext back; one of the whole folder always counts."""
        mark = self.marks.get(checkpoint.folder) or self.index.folders.get(checkpoint.folder)
        same = mark is not None and mark.uidvalidity == checkpoint.uidvalidity
        # A listing of the whole folder vouches for it whatever the mark says: with a
        # lower uidnext, the server was restored from a backup and gives the UIDs from
        # there on to new messages, which a mark kept higher would never list.
        # A HIGHESTMODSEQ of its own moves the mark's, the flag changes up to it held.
        whole = checkpoint.since is None
        modseq = checkpoint.highestmodseq is not None and (
            not same or checkpoint.highestmodseq != mark.highestmodseq)
        if whole and not (same and mark.uidnext == checkpoint.uidnext and not modseq) \
                or not whole and same and checkpoint.since <= mark.uidnext < checkpoint.uidnext:
            self.marks[checkpoint.folder] = checkpoint
        elif not whole and same and checkpoint.since <= mark.uidnext and modseq:
            self.marks[checkpoint.folder] = checkpoint._replace(uidnext=mark.uidnext)

    def save_index(self):
        """Write the sidecar once the Appender has closed: from the noted messages when
        the file is a plain one holding just what was read and them, else by a scan of
        what the file gained since it was read."""
        if not self.appended and not self.marks:
            return
        folders = {**self.index.folders, **self.marks}
        with open(self.path, "rb") as raw:
            fd = raw.fileno()
            st = os.fstat(fd)
            if self.index.describes(fd, st) and (
                    not self.appended and st.st_size == self.index.raw_end
                    or not compression.suffix_of(self.path) and st.st_size == self.appended_end):
                sidecar.save(self.path, self.index.grown(
                    fd, st, st.st_size, self.appended_end, self.appended, folders))
                return
        try:
            self._read_index(self.index, keep=True)
        except DataError:
            pass  # the next reader reports it

    @property
    def uids(self):
        """{(folder, uidvalidity, uid): (_record_key, ...)} of the messages held."""
        self._build_keys()
        return self._uids

    @property
    def by_id(self):
        """{generation: Counter of _record_key} of the messages held."""
        self._build_keys()
        return self._by_id

    def _build_keys(self):
        """From all rows: asked only for a UID the summary in index.held has, or to match
        by content."""
        if self._uids is None:
            self._uids, self._by_id = {}, defaultdict(Counter)
            for row in self.index.rows:
                record = sidecar.record(row)
                self._by_id[_generation(record)][self._add_key(record)] += 1
            for record in self._added:
                self._add_key(record)

    def add_uid(self, record):
        """Count a message appended now as held by its folder, UIDVALIDITY and UID."""
        self.index.held.add(record)
        self._added.append(record)
        if self._uids is not None:
            self._add_key(record)

    def _add_key(self, record):
        """Note record's _record_key under its UID; returns the key."""
        key = _record_key(record)
        if _generation(record) is not None and record.get("uid") is not None:
            uid = (*_generation(record), record["uid"])
            self._uids[uid] = self._uids.get(uid, ()) + (key,)
        return key

    def _others(self, own):
        """Whether the file holds messages of a generation a message of own may be (see
        _may_be), which it is then matched against by content."""
        return any(_may_be(own, generation) for generation in self.index.held.generations())

    def _consume(self, table, record, key, own):
        """Match key once against the messages own may be (see _may_be)."""
        for generation, counter in table.items():
            if _may_be(own, generation) and counter[key] > 0:
                counter[key] -= 1
                return True
        return False

    def _uid_held(self, record):
        """(held, own): whether the record's UID is held for a message that agrees with
        it, and the generation it is matched against by content otherwise (see
        _may_be): its own, or (folder, None) for all of its folder's where the UID is
        held for another message."""
        own = _generation(record)
        if own is None or (own, record.get("uid")) not in self.index.held:
            return False, own
        keys = self.uids.get((*own, record.get("uid")), ())
        return any(_agree(record, key) for key in keys), own if not keys else (own[0], None)

    def holds_record(self, record):
        held, own = self._uid_held(record)
        return held or self._others(own) and self._consume(
            self.by_id, record, _record_key(record), own)

    def matched_by_content(self, record):
        """Whether a record was matched by content against messages the file holds (and
        that holds_record found none of them free to be it)."""
        return self._others(self._uid_held(record)[1])

    def holds_message(self, record, data):
        """data in LF form, as mboxrd stores it."""
        held, own = self._uid_held(record)
        if held:
            return True
        if record.get("not_held_in") == self.path:
            return False  # mbox-ids found it held by no message: its copies are others'
        if not self._others(own):
            return False
        if self.by_digest is None:
            self.by_digest = defaultdict(Counter)
            try:
                for _offset, held, held_data in scan(self.path, self.name):
                    self.by_digest[_generation(held)][digest(held_data)] += 1
            except (TornTail, CutStream):
                pass
        return self._consume(self.by_digest, record, digest(data), own)
