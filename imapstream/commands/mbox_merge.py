"""mbox-merge: a message stream or an mbox on stdin, appended to mbox files, never a
message twice."""

import errno
import os
import shutil
import sys

import orjson

from .. import cli, diagnostics, errors
from ..incoming import incoming_messages
from ..mbox import compression, flagjournal, fold, labeljournal
from ..mbox.append import Appender, clear_dead, lock, replace, unlock
from ..mbox.archive import folder_path, mbox_files
from ..mbox.folders import COMPRESSION_SUFFIX, SUFFIXES
from ..mbox.mboxrd import format_message
from ..mbox.reader import Holdings, message_at
from ..mbox.thunderbird import lay_out
from ..message import to_lf
from ..records import Checkpoint, is_update, read_lines, read_records, write_record

PROG = "mbox-merge"


def parser():
    p = cli.ArgumentParser(prog=PROG, description="Append the messages of a message stream "
                           "(see imapstream(7)) or an mbox on stdin to FILE, or to one file "
                           "per folder in DIR, skipping those already held.")
    p.add_argument("file", nargs="?", metavar="FILE", help="the mbox file to append to")
    p.add_argument("-d", "--directory", metavar="DIR", help="a backup directory, one file "
                   "per folder")
    p.add_argument("-z", "--compress", choices=tuple(COMPRESSION_SUFFIX), default="none",
                   help="compression of files created in DIR (default none); existing "
                        "files keep theirs")
    p.add_argument("--json", action="store_true", help="also write one NDJSON summary "
                   "record per file on stdout, and a closing one")
    p.add_argument("--prune-deleted", metavar="AGE", nargs="?", const="0",
                   help="read no input: remove from each mbox file of DIR the messages its "
                        "flag journal says were gone from the server AGE ago or longer "
                        "(N, Ns, Nm, Nh or Nd; a bare N is days; default 0: all of them)")
    p.add_argument("--replace", metavar="NEW", help="read no input: move each mbox file of "
                   "the backup directory NEW over its folder's file in DIR, under the locks "
                   "an append takes, then remove NEW")
    p.add_argument("--thunderbird", metavar="TOP", help="read no messages: read records "
                   "with \"file\" and \"folder\" (such as mbox-merge's and mbox-ids' "
                   "folder lists) and link each file of DIR into TOP as Thunderbird's local "
                   "folders (Personal/2005/Q3 as Personal.sbd/2005.sbd/Q3), each part "
                   "named as Thunderbird names it")
    p.add_argument("--labels", action="store_true", help="read message records from Gmail "
                   "(imap-list's) instead: note in the label journal of DIR's file that "
                   "holds each message the labels it has now, where they changed")
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    if bool(options.file) == bool(options.directory):
        raise errors.UsageError("give FILE or -d DIR")
    if options.prune_deleted is not None:
        if not options.directory:
            raise errors.UsageError("--prune-deleted takes -d DIR, not FILE")
        return prune_all(options.directory, _age(options.prune_deleted))
    if options.replace:
        if not options.directory:
            raise errors.UsageError("--replace takes -d DIR, not FILE")
        replace_all(options.replace, options.directory)
        return errors.OK
    if options.thunderbird:
        if not options.directory:
            raise errors.UsageError("--thunderbird takes -d DIR, not FILE")
        lay_out((orjson.loads(line) for _, line in read_lines(stdin)), options.directory,
                options.thunderbird)
        return errors.OK
    if options.labels:
        if not options.directory:
            raise errors.UsageError("--labels takes -d DIR, not FILE")
        _follow_labels(options.directory, stdin)
        return errors.OK
    if options.directory and os.path.isdir(options.directory):
        clear_dead(options.directory)
    merger = Merger(options, stdout)
    try:
        merger.add_all(_incoming(stdin))
    finally:  # interrupted too: the folders whose checkpoints came are backed up
        merger.close()
        if options.json and merger.folders:
            write_record(stdout, {"folders": len(merger.folders),
                                  "failed": merger.failed_folders()})
    return errors.DATAERR if merger.refused else \
        errors.PARTIAL if merger.failed or merger.uncopied else errors.OK


def _follow_labels(directory, stdin):
    """--labels: see labeljournal.follow; a line per file on stderr."""
    records = (record for lineno, record in read_records(stdin)
               if Checkpoint.of(record, lineno) is None)
    for path, count in labeljournal.follow(directory, records).items():
        diagnostics.inform(f"LABELS: {diagnostics.count(count, 'message')} with other "
                           f"labels now, noted for {path}")


def _incoming(stdin):
    """(record, data in LF form) from a message stream or an mbox."""
    for record, data, lf in incoming_messages(stdin):
        if data is not None and not lf:
            data = to_lf(data)  # the server's form is dropped here: one copy less held
        yield record, data


class Merger:
    """Appends to one file at a time, holding its lock from the scan to the last write."""

    def __init__(self, options, stdout):
        self.options, self.stdout = options, stdout
        self.path = self.appender = self.holdings = None
        self.refused = set()  # files that are not mboxes: their messages are skipped
        self.failed = set()  # files that could not be read or written: likewise
        self.folders = {}  # the folders whose checkpoints came: {folder: its file}
        self.withdrawn = set()  # those whose checkpoint says a message was dropped
        self.given = 0  # messages given for the file of this visit
        self.first = None  # the record of the first message given for it
        # {gm_msgid: (file, offset)} of the messages from Gmail appended, and once a
        # record with copy_of came (gmail_held), of those the files held before
        self.gmail, self.gmail_held = {}, False
        self.uncopied = 0  # records with copy_of whose message no file held

    def target(self, record):
        if self.options.file:
            return self.options.file
        folder = record.get("folder")
        if not isinstance(folder, str):
            raise errors.DataError("a message without a folder cannot go to -d DIR; give FILE")
        return folder_path(self.options.directory, folder, record.get("delimiter"),
                           self.options.compress)

    def add_all(self, messages):
        """Add (record, data) pairs; none is still held when this returns, so that close
        (which may scan what a compressed file gained) does not hold the last one too."""
        for record, data in messages:
            self.add(record, data)

    def add(self, record, data):
        """Append a message unless held; data None: a folder checkpoint, an update, or a
        record with copy_of."""
        if data is None:
            if is_update(record):
                if self.visit(self.target(record)):
                    self.holdings.note_update(record)
            elif "copy_of" in record:
                self.copy(record)
            else:
                self.checkpoint(record)
            return
        if not self.visit(self.target(record)):
            return
        self.given += 1
        self.first = self.first or record
        if not self.holdings.holds_message(record, data):
            text = format_message(data, record)
            try:
                self.appender.write(text, len(data))
            except OSError as exc:
                self.fail(exc)
                return
            self.holdings.add_uid(record)
            self.holdings.add_appended(text)
            if "labels" in record:
                labeljournal.touch(self.path)
            if record.get("gm_msgid"):
                self.gmail.setdefault(record["gm_msgid"], (self.path,
                                                           self.holdings.appended[-1][0]))

    def copy(self, record):
        """A message from Gmail that another file holds (mbox-ids --copies): appended to
        its folder's file with the bytes held there.  Where none is (its fetch failed),
        its folder's checkpoint no longer vouches, and a later run fetches it."""
        path = self.target(record)
        if not self.visit(path):  # the file visited before is closed: its bytes readable
            return
        if not self.gmail_held:
            files = mbox_files(self.options.directory) if self.options.directory else []
            self.gmail_held = True
            for held in files:
                for offset, r in Holdings(held).records():
                    if r.get("gm_msgid"):
                        self.gmail.setdefault(r["gm_msgid"], (held, offset))
        source = self.gmail.get(record["copy_of"])
        found = message_at(*source) if source and source[0] != path else None
        if found is None:
            diagnostics.warn(PROG, f"{record['folder']}: UID {record['uid']}: no file holds "
                                   f"its message (gm_msgid {record['copy_of']}) to copy")
            self.withdrawn.add(record["folder"])
            self.uncopied += 1
            return
        self.add({k: v for k, v in record.items() if k != "copy_of"}, found[1])

    def visit(self, path):
        """Make path the file appended to; False for a file that is not an mbox."""
        if path in self.refused or path in self.failed:
            return False
        if path != self.path:
            self.close()
            self.path = path
            try:
                self._open(path)
            except errors.DataError as exc:
                diagnostics.warn(PROG, f"{exc}; its messages are skipped")
                self.refused.add(path)
                self.path = None
                return False
            except OSError as exc:
                self.fail(exc)
                return False
        return True

    def fail(self, exc):
        """The file of this visit failed (a symbolic link, a directory, a file at its size
        limit, an I/O error): what this visit appended is cut off, and the file's other
        messages are skipped.  A full disk fails every file: it stops the command."""
        path, appender = self.path, self.appender
        self.path = self.appender = self.holdings = None
        if appender is not None and not appender.abandoned:
            try:
                appender.abandon()
            except OSError:
                pass  # reported below; the file keeps what it had before this visit
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(exc.errno, exc.strerror, path) from None
        reason = errors.describe(OSError(exc.errno, exc.strerror, path))[0]
        diagnostics.warn(PROG, f"{reason}; its messages are skipped")
        self.failed.add(path)

    def checkpoint(self, record):
        """Record a folder checkpoint that says more than the last one in the sidecar of
        the folder's file.  A folder without a file holds nothing to vouch for, but for
        an empty one: it gets an empty file, which keeps its checkpoint (so a run with
        nothing new does not examine it again) and stands for it in a restore."""
        checkpoint = Checkpoint.of(record)
        path = self.folders[checkpoint.folder] = self.target(record)
        if record.get("failed") is True:
            self.withdrawn.add(checkpoint.folder)
        if not checkpoint.says_more() or checkpoint.folder in self.withdrawn:
            return
        new = path != self.path and not os.path.exists(path)
        if (not new or checkpoint.messages == 0) and self.visit(path):
            if new:
                self.appender.begin()
            self.holdings.checkpoint(checkpoint)

    def failed_folders(self):
        """The folders whose checkpoints came, not backed up to the end: a message of
        theirs was dropped on the way ("failed": true), or their file failed."""
        return sorted(folder for folder, path in self.folders.items()
                      if folder in self.withdrawn or path in self.failed | self.refused)

    def _open(self, path):
        appender = Appender(path)
        try:
            self.holdings = self._holdings(appender, path)
        except BaseException:
            appender.close()
            raise
        self.appender, self.given, self.first = appender, 0, None
        for line in self.holdings.unmatched_reports():
            diagnostics.warn(PROG, line)
        if self.holdings.torn_at is not None:
            diagnostics.warn(PROG, f"{path}: cut off a torn last message at byte "
                           f"{self.holdings.torn_at}")
            self.appender.cut_torn_tail(self.holdings.torn_at)

    def _synced(self):
        """Under the file's lock, its data synced: the sidecar, then the flag journal
        folded into a plain file (fold.py) where it has flags not yet there."""
        holdings = self.holdings
        holdings.save_index()
        if compression.suffix_of(self.path) or not (holdings.journal_lines or any(
                "flags" in entry for entry in holdings.journal.entries.values())):
            return
        folders = {**holdings.index.folders, **holdings.marks}
        if holdings.appended:  # the index read describes the file without them
            holdings = Holdings(self.path, keep_index=True)
            folders = None
        if holdings.torn_at is None:
            fold.fold(self.path, holdings.index, flagjournal.read(self.path), folders)

    @staticmethod
    def _holdings(appender, path):
        holdings = Holdings(path, keep_index=True)
        if holdings.cut_stream is not None and appender.cut_torn_stream(holdings.cut_stream):
            diagnostics.warn(PROG, f"{path}: cut off a compressed stream left unfinished "
                                   f"by a crash")
        if holdings.trailer is not None:
            appender.complete(holdings.trailer)
            diagnostics.warn(PROG, f"{path}: completed the trailer of its last gzip member")
            holdings = Holdings(path, keep_index=True)
        return holdings

    def close(self):
        if self.appender is None:
            return
        try:
            flagjournal.append(self.path, self.holdings.journal_lines)  # before the sidecar
            self.appender.close(synced=self._synced)
        except OSError as exc:
            self.fail(exc)
            return
        appender, self.appender = self.appender, None
        if appender.abandoned:
            return
        if not self.given:
            return  # a visit for a checkpoint alone
        name = os.path.relpath(self.path, self.options.directory) if self.options.directory \
            else self.path
        largest = (f", of which the largest message was {appender.largest} bytes"
                   if appender.messages > 1 else "")
        diagnostics.inform(f"APPEND: Appended {diagnostics.count(appender.messages, 'message')}"
                   f" to {name} ({diagnostics.count(appender.bytes, 'byte')}{largest})")
        if self.options.json:
            write_record(self.stdout, {"file": self.path, "folder": self.first.get("folder"),
                                       "delimiter": self.first.get("delimiter"),
                                       "messages": appender.messages, "bytes": appender.bytes,
                                       "largest": appender.largest})


def replace_all(new, directory):
    """--replace: each mbox file of new over its namesake in directory, the folder's
    files with other suffixes removed; then new itself."""
    for path in mbox_files(new):
        name = os.path.basename(path)
        stem = next(name[:-len(s)] for s in reversed(SUFFIXES) if name.endswith(s))
        others = [os.path.join(directory, stem + suffix) for suffix in SUFFIXES
                  if stem + suffix != name]
        replace(path, os.path.join(directory, name), others)
    shutil.rmtree(new)


def _age(text):
    """--prune-deleted's AGE in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text[-1:] in units else (text, "d")
    if not (number.isascii() and number.isdigit()):
        raise errors.UsageError(f"--prune-deleted {text}: give N, Ns, Nm, Nh or Nd")
    return int(number) * units[unit]


def prune_all(directory, age):
    """--prune-deleted: each plain mbox file of directory without the messages its
    journal says were first missing age seconds ago or earlier, under its lock."""
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC) - timedelta(seconds=age)
    for path in mbox_files(directory):
        journal = flagjournal.read(path)
        if not any("missing_since" in entry for entry in journal.entries.values()):
            continue
        if compression.suffix_of(path):
            diagnostics.warn(PROG, f"{path}: a compressed file; its deleted messages stay")
            continue
        fd, dotlock = lock(path)
        try:
            holdings = Holdings(path, keep_index=True)
            if holdings.torn_at is not None or holdings.cut_stream is not None:
                diagnostics.warn(PROG, f"{path}: its last message is cut short; not pruned "
                                       f"until mbox-merge repairs it")
                continue
            _changed, pruned = fold.fold(path, holdings.index, flagjournal.read(path),
                                         prune_before=before)
        finally:
            unlock(fd, dotlock)
        if pruned:
            diagnostics.inform(f"PRUNE: Removed {diagnostics.count(pruned, 'message')} "
                               f"deleted on the server from {path}")
    return errors.OK


def run():
    cli.entry_point(main)
