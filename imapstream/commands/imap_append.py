"""imap-append: a message stream or an mbox on stdin, or a backup directory, APPENDed to
an IMAP server with its flags, keywords and INTERNALDATE; messages already there are
skipped, so a rerun adds nothing."""

import os
import re
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import NamedTuple

from .. import cli, diagnostics, errors
from ..imap import appends, gmail, store
from ..incoming import incoming_messages
from ..mbox import flagjournal, labeljournal, sidecar
from ..mbox.archive import mbox_files
from ..mbox.folders import SUFFIXES, folder_name
from ..mbox.reader import scan
from ..message import crlf_size, header_section, message_id
from ..records import write_record

PROG = "imap-append"
BATCH_BYTES = 8 << 20  # a MULTIAPPEND ends once its messages reach this
BATCH_MESSAGES = 200
SYSTEM_FLAGS = {"\\seen", "\\answered", "\\flagged", "\\deleted", "\\draft"}
KEYWORD = re.compile(r"[!#$&'+-\[^-z|}~]+")  # an IMAP atom
BARE_LF = re.compile(rb"(?<!\r)\n")


def parser():
    p = cli.ArgumentParser(prog=PROG, description="APPEND the messages of a message stream "
                           "(see imapstream(7)) or an mbox on stdin to FOLDER, or each to "
                           "its own folder (--from-stream), or a whole backup directory "
                           "(-d DIR), with flags, keywords and INTERNALDATE, skipping those "
                           "the folder already holds.")
    p.add_argument("folder", nargs="?", metavar="FOLDER", help="the folder to append to")
    p.add_argument("--from-stream", action="store_true", help="append each message to the "
                   "folder its record or X-Imapstream header names")
    p.add_argument("-d", "--directory", metavar="DIR", help="restore a backup directory, "
                   "one folder per mbox file")
    p.add_argument("--no-create", action="store_true", help="do not create missing folders; "
                   "their messages fail")
    p.add_argument("--labels-as-keywords", action="store_true", help="a message with Gmail "
                   "labels goes, to a server other than Gmail, once, with its labels as "
                   "keywords, not to the folder of each label")
    p.add_argument("-n", "--dry-run", action="store_true", help="print the records of what "
                   "would be appended; change nothing")
    p.add_argument("--json", action="store_true", help="print one NDJSON record per "
                   "appended message")
    p.add_argument("--include-deleted", action="store_true", help="also append the "
                   "messages the backup knows were deleted on the server (a record with "
                   "\"missing_since\", from -d DIR's flag journals or the stream)")
    store.add_options(p)
    p.set_defaults(bulk=True)  # messages cross the link: COMPRESS pays (--link-compression)
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    if (options.folder is not None) + options.from_stream + (options.directory is not None) != 1:
        raise errors.UsageError("give one of FOLDER, --from-stream or -d DIR")
    files = sorted(mbox_files(options.directory), key=_parents_first) \
        if options.directory else None
    server = store.Store(options, PROG)
    try:
        restorer = Restorer(server, options, stdout)
        if files is None:
            messages = (item for item in incoming_messages(stdin) if item[1] is not None
                        and (options.include_deleted or "missing_since" not in item[0]))
            restorer.add_all("", messages, folder=options.folder)
            return restorer.status()
        for path in files:
            fallback = folder_name(os.path.basename(path), restorer.delimiter)
            try:
                if not restorer.add_all(f"{path}: ", _held(path, options.include_deleted),
                                        fallback=fallback):
                    restorer.keep(_empty_folder(path, fallback))
            except errors.DataError as exc:
                diagnostics.warn(PROG, str(exc))
                restorer.bad_input = True
            except _Unreadable as exc:
                restorer.fail(str(exc))
        return restorer.status()
    finally:
        server.close()


def _empty_folder(path, fallback):
    """The folder an mbox file without messages stands for: its checkpoint's (the name
    in full, with its delimiter), else the one its name gives."""
    for checkpoint in sidecar.checkpoints(path).values():
        return {"folder": checkpoint.folder, "delimiter": checkpoint.delimiter}
    return {"folder": fallback}


def _parents_first(path):
    """A backup file's place in a restore: by the parts of its name, so that a folder
    comes before its subfolders (A.mbox, A.B.mbox, A.B.C.mbox, AB.mbox), as a server
    that creates the parents of A/B/C (Cyrus) would otherwise already hold A."""
    name = os.path.basename(path)
    stem = next(name[:-len(suffix)] for suffix in SUFFIXES if name.endswith(suffix))
    return stem.split("."), name


class _Unreadable(Exception):
    """A file of the backup directory cannot be read; the other files go on."""


def _held(path, include_deleted):
    """(record, data, True) per message of the mbox file path, with the flags its flag
    journal has last, those deleted on the server only if include_deleted; a failure
    to read it (a directory, a symbolic link loop, an I/O error) as _Unreadable."""
    try:
        journal = flagjournal.read(path)
        labels = labeljournal.load(path)  # Gmail labels changed since (see labeljournal)
        for _offset, record, data in scan(path):
            journal.apply(record)
            if record.get("gm_msgid") in labels:
                record["labels"] = labels[record["gm_msgid"]]
            if include_deleted or "missing_since" not in record:
                yield record, data, True
    except OSError as exc:
        raise _Unreadable(errors.describe(exc)[0]) from None


class Message(NamedTuple):
    where: str  # "message 17 (folder X)", for reports
    folder: str
    wire: bytes
    flags: tuple
    date: datetime | None
    key: tuple  # (Message-ID, size counted in CRLF), by which a folder's holdings match
    record: dict  # the NDJSON record printed for it
    labels: tuple = ()  # Gmail labels to set once it is appended


class Restorer:
    """Appends messages folder by folder, in batches; before the first message for a
    folder it lists what the folder holds, and skips a message while the folder holds an
    unmatched one with the same Message-ID and size.  After a dropped connection in the
    middle of an APPEND it lists the folder again to learn what arrived (see landed)."""

    def __init__(self, server, options, out):
        self.server, self.options, self.out = server, options, out
        listed, _unreadable = server.folders()
        self.delimiter = listed[0].delimiter if listed else None
        # A parent that is only a level of the hierarchy (A of A/B/C on Dovecot or
        # Courier) is created before it holds messages.
        self.existing = {folder.name for folder in listed if folder.selectable}
        self.special = {flag.lower(): folder.name for folder in listed for flag in folder.flags}
        self.gmail = server.gmail
        self.gm_msgids = set()  # of the messages with labels given so far: each goes once
        self.multiappend = server.has_capability("MULTIAPPEND")
        self.held = {}  # folder -> Counter of (message_id, size) not yet matched, or None
        self.present = {}  # folder -> Counter of (message_id, size) the folder holds
        self.batch, self.batch_bytes = [], 0
        self.failed, self.bad_input = 0, False

    def status(self):
        return errors.DATAERR if self.bad_input else errors.PARTIAL if self.failed else errors.OK

    def fail(self, message):
        diagnostics.warn(PROG, message)
        self.failed += 1

    def add_all(self, prefix, incoming, folder=None, fallback=None):
        """Append (record, data, lf) items to folder, or each to its record's folder;
        returns how many there were."""
        position = 0
        try:
            for position, (record, data, lf) in enumerate(incoming, 1):
                where = f"{prefix}message {position}"
                wire = BARE_LF.sub(b"\r\n", data) if lf else data
                for target, labels, flagged in self.targets(record, folder, fallback, where):
                    self.add(f"{where} (folder {target})", target, flagged, wire, labels)
        except (errors.DataError, _Unreadable):
            self.flush()  # the messages before bad input are still appended
            raise
        self.flush()
        return position

    def keep(self, record):
        """Create the folder of an empty mbox file, unless it exists (or --no-create)."""
        folder = self.target(record, record["folder"], "")
        if not self.options.no_create and self.holdings(folder) is None:
            self.failed += 1

    def targets(self, record, folder, fallback, where):
        """[(folder, Gmail labels to set, record)] a message goes to: FOLDER if given; for
        one with labels, to Gmail once (gmail.gmail_target), to another server once per
        label's folder (gmail.targets), or once with keywords (gmail.keyword_target,
        its record given them); else its record's folder (target)."""
        labels = record.get("labels")
        if folder or not isinstance(labels, list):
            return [(folder or self.target(record, fallback, where), (), record)]
        gm_msgid = record.get("gm_msgid")
        if gm_msgid in self.gm_msgids:
            return []  # a copy of one given already (Takeout's mbox file per label)
        if gm_msgid is not None:
            self.gm_msgids.add(gm_msgid)
        if self.gmail:
            name, rest = gmail.gmail_target(labels, self.special)
            return [(name, tuple(rest), record)]
        if self.options.labels_as_keywords:
            name, flags = gmail.keyword_target(labels, self.special)
            given = record.get("flags") or []
            return [(name, (), dict(record, flags=given + [f for f in flags if f not in given]))]
        return [(name, (), record)
                for name in gmail.targets(labels, self.special, self.delimiter)]

    def target(self, record, fallback, where):
        """The record's folder re-joined with this server's delimiter, else fallback."""
        folder, delimiter = record.get("folder"), record.get("delimiter")
        if not isinstance(folder, str):
            if fallback:
                return fallback
            raise errors.DataError(f"{where}: no folder in its record; give FOLDER")
        if isinstance(delimiter, str) and delimiter and self.delimiter:
            return self.delimiter.join(folder.split(delimiter))
        return folder

    def add(self, where, folder, record, wire, labels=()):
        flags = record.get("flags") or []  # strings: records.check_fields
        kept = tuple(f for f in flags if f.lower() in SYSTEM_FLAGS
                     or not f.startswith("\\") and KEYWORD.fullmatch(f))
        dropped = [f for f in flags if f not in kept and f.lower() != "\\recent"]
        if dropped:
            diagnostics.warn(PROG, f"{where}: dropped flags IMAP cannot carry: {' '.join(dropped)}")
        try:
            date = datetime.fromisoformat(record["internaldate"]) if record.get(
                "internaldate") else None
            if date and date.year < 1000:
                raise ValueError
        except (TypeError, ValueError):
            self.fail(f"{where}: bad internaldate {record['internaldate']!r}")
            return
        date = date.replace(tzinfo=UTC) if date and not date.tzinfo else date
        held = self.holdings(folder)
        if held is None:
            self.failed += 1
            return
        mid = message_id(header_section(wire))
        key = (mid, crlf_size(wire))
        if held[key] > 0:
            held[key] -= 1
            return
        out = {"folder": folder, "uidvalidity": None, "uid": None, "message_id": mid,
               "size": key[1], "flags": list(kept),
               "internaldate": date.isoformat() if date else None,
               **({"labels": list(labels)} if labels else {})}
        if self.options.dry_run:
            write_record(self.out, out)
            return
        if self.batch and (folder != self.batch[0].folder or len(self.batch) >= BATCH_MESSAGES
                           or self.batch_bytes >= BATCH_BYTES):
            self.flush()
        self.batch.append(Message(where, folder, wire, kept, date, key, out, labels))
        self.batch_bytes += len(wire)

    def holdings(self, folder):
        if folder not in self.held:
            self.present[folder] = self._list_held(folder)
            self.held[folder] = None if self.present[folder] is None \
                else Counter(self.present[folder])
        return self.held[folder]

    def _list_held(self, folder):
        if folder.upper() != "INBOX" and folder not in self.existing:
            if self.options.no_create:
                diagnostics.warn(PROG, f"{folder}: no such folder, and --no-create")
                return None
            if self.options.dry_run:
                return Counter()
            try:
                created = self.server.create(folder)
            except errors.ServerError as exc:
                diagnostics.warn(PROG, str(exc))
                return None
            if created:
                return Counter()
        try:
            return self._listing(folder)
        except errors.ServerError as exc:
            diagnostics.warn(PROG, str(exc))
            return None

    def _listing(self, folder):
        """A Counter of the (Message-ID, size) of every message folder holds; the
        folder is left unselected after, for a server that refuses APPEND to a folder
        selected read-only (Courier)."""
        selected = self.server.examine(folder)
        held = Counter((message_id(item.header or b""), item.size)
                       for item in self.server.listing(selected))
        self.server.unselect()
        return held

    def landed(self, batch):
        """For each message of batch, whether its folder got it before the connection
        dropped: the folder is listed again, and a message arrived while the folder
        holds more messages with its Message-ID and size than it did before."""
        folder = batch[0].folder
        now = self._listing(folder)
        arrived = now - self.present[folder]
        found, landed = [], Counter()
        for message in batch:
            found.append(arrived[message.key] > landed[message.key])
            landed[message.key] += found[-1]
        self.present[folder] = now - landed
        return found

    def flush(self):
        batch, self.batch, self.batch_bytes = self.batch, [], 0
        if len(batch) > 1 and self.multiappend:
            try:
                self._report(batch, self._append(batch))
                return
            except errors.ServerError:
                pass  # MULTIAPPEND is all or nothing: find the messages refused one by one
        for message in batch:
            try:
                self._report([message], self._append([message]))
            except errors.ServerError as exc:
                self.fail(f"{message.where}: server said {exc}")

    def _append(self, batch):
        """APPEND the batch in one command; {position: (uidvalidity, uid)}."""
        try:
            appended = self.server.append(batch[0].folder, batch, self.landed)
        except appends.AppendRefused as exc:
            raise errors.CommandError(f"{batch[0].where}: {exc}", errors.PARTIAL) from None
        self.present[batch[0].folder].update(m.key for m in batch)
        return appended

    def _report(self, batch, appended):
        for number, message in enumerate(batch):
            if number in appended:
                uidvalidity, uid = appended[number]
                message.record.update(uidvalidity=uidvalidity, uid=uid)
            if message.labels:
                self._label(message, appended.get(number))
            if self.options.json:
                write_record(self.out, message.record)

    def _label(self, message, appended):
        """STORE +X-GM-LABELS a message's labels, by the UID APPENDUID gave it."""
        if appended is None:
            self.fail(f"{message.where}: appended, but the server gave it no UID "
                      f"(APPENDUID), so its labels were not set")
            return
        try:
            self.server.add_labels(message.folder, [appended[1]], list(message.labels))
        except errors.ServerError as exc:
            self.fail(f"{message.where}: appended, but its labels were not set: {exc}")


def run():
    cli.entry_point(main)
