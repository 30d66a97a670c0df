"""imap-fetch: message records in, the message stream (or mboxrd) out."""

import argparse
import collections
import os
import re
import sys

from .. import cli, diagnostics, errors
from ..imap import connection
from ..message import header_section, message_id, to_lf
from ..progress import Progress
from ..records import (
    Checkpoint,
    is_announce,
    is_update,
    message_key,
    read_records,
    withdraw,
    write_record,
)
from ..stream import write_message

PROG = "imap-fetch"
BATCH_BYTES = 8 << 20  # a batch ends once its messages' sizes reach this
BATCH_MESSAGES = 1000
IN_FLIGHT = 2 * BATCH_BYTES  # bytes requested and not yet written, at most
# FETCH commands in flight, at most: their bytes stay within what the sockets buffer, as
# each is written while the server's answers wait to be read.
MAX_REQUESTS = 256


def parser():
    p = cli.ArgumentParser(prog=PROG, description="Read message records (imap-list's) on "
                           "stdin and write the message stream (see imapstream(7)) on "
                           "stdout, fetching with BODY.PEEK[] under EXAMINE over one "
                           "connection at a time (a new one after a drop).")
    p.add_argument("--mbox", action="store_true", help="write plain mboxrd instead")
    p.add_argument("--max-bytes", metavar="SIZE", type=byte_size,
                   help="fetch messages while their sizes add up to at most SIZE bytes (K, "
                        "M, G: times 1024, 1024², 1024³), the first whatever its size; then "
                        "stop with exit 75, saying what is left: a later run goes on")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress line, even when stderr is a terminal")
    p.add_argument("--progress-dir", metavar="DIR",
                   help="draw one progress line together with the other imap-fetch "
                        "processes given the same (empty) directory DIR")
    connection.add_options(p)
    p.set_defaults(bulk=True)  # messages cross the link: COMPRESS pays (--link-compression)
    p.environment.append(("TERM", "dumb turns the progress line off"))
    return p


def main(argv, stdin=None, stdout=None):
    return cli.guarded(PROG, _main, argv, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)


def _main(argv, stdin, stdout):
    options = parser().parse_args(argv)
    if options.progress_dir is not None and not os.path.isdir(options.progress_dir):
        raise errors.UsageError(f"--progress-dir {options.progress_dir}: not a directory")
    progress = Progress("FETCH", False if options.no_progress else None,
                        shared=options.progress_dir)
    if progress.enabled:
        options.on_data = progress.arrived
    server = StoreOnFirstUse(options)
    fetcher = Fetcher(server, stdout, options.mbox, progress, options.max_bytes)
    records = read_records(stdin, idle=fetcher.idle)
    try:
        try:
            for lineno, record in records:
                if is_announce(record):  # messages are coming: log in meanwhile
                    server.log_in()
                    continue
                if Checkpoint.of(record, lineno) is not None:
                    fetcher.checkpoint(record)
                    continue
                message_key(record, lineno)
                if is_update(record):
                    fetcher.update(record)
                    continue
                if "copy_of" in record and not options.mbox:
                    fetcher.pass_on(record)
                    continue
                fetcher.add(record)
        except errors.DataError:
            fetcher.flush()  # the records before a malformed line are still fetched
            raise
        fetcher.flush()
    except errors.LimitReached as exc:
        raise fetcher.stopped(exc, records) from None
    finally:
        progress.close()
        server.close()
    return errors.PARTIAL if fetcher.failed else errors.OK


def byte_size(text):
    """--max-bytes: a number of bytes, with K, M or G for 1024, 1024², 1024³."""
    match = re.fullmatch(r"(\d+)([KMG]?)", text, re.I)
    if not match or not int(match.group(1)):
        raise argparse.ArgumentTypeError(f"wants a size above 0 such as 500M or 2G, not "
                                         f"{text!r}")
    return int(match.group(1)) << 10 * " KMG".index(match.group(2).upper() or " ")


class StoreOnFirstUse:
    """The store (imap.store.Store, which logs in at its first operation), imported and
    made when the first batch is requested: a run that gets no message to fetch never
    imports imapclient and ssl, most of the command's start-up time.  The connection is
    dialled before they load (connection.dial_early)."""

    def __init__(self, options):
        self.options, self.store = options, None

    @property
    def bodies(self):
        return self._made().bodies

    def log_in(self):
        """Log in now, if not yet: a folder announcement says messages are coming."""
        if self.store is None:
            self._made().log_in()

    def _made(self):
        if self.store is None:
            connection.dial_early(self.options)
            from ..imap import store
            self.store = store.Store(self.options, PROG, lazy=True)
        return self.store

    def close(self):
        if self.store is not None:
            self.store.close()


class Fetcher:
    """Fetches message records in batches: one folder per batch, bounded by the sizes
    the records give.  Batches are requested as they fill, up to IN_FLIGHT bytes ahead
    of what is written (the next requested before this one is written), and all
    written whenever the input pauses.  Output keeps input order: a checkpoint waits for
    the messages before it.  Under --max-bytes no batch is requested past the budget:
    what was requested is written, then the run stops."""

    def __init__(self, server, out, mbox, progress, max_bytes=None):
        self.server, self.out, self.mbox, self.progress = server, out, mbox, progress
        self.max_bytes, self.fetched = max_bytes, 0  # bytes of the messages written
        self.requested = 0  # bytes the requested records give, for --max-bytes
        self.arriving = None  # the record being added
        self.limit = None  # the LimitReached that stops the run
        self.halted = False  # the run is stopped: nothing more is fetched
        self.failed = 0
        self.failed_folders = set()  # folders with a message not fetched in this run
        self.marked_seen = set()  # folders where the server set \Seen despite BODY.PEEK
        self.batch, self.batch_bytes = [], 0
        # In output order: [records] requested, a checkpoint record, or (record,) passed on
        self.pending = collections.deque()
        self.in_flight = 0  # bytes the requested batches' records give

    def add(self, record):
        self.arriving = record  # left to fetch, should a limit stop the run here
        self.check()
        if self.batch and (record["folder"] != self.batch[0]["folder"]
                           or len(self.batch) >= BATCH_MESSAGES
                           or self.batch_bytes >= BATCH_BYTES):
            self.request()
            self.write(IN_FLIGHT)
        self.arriving = None
        self.batch.append(record)
        self.batch_bytes += record.get("size") or 0
        self.progress.expect(record.get("size") or 0)

    def check(self):
        if self.limit is not None and not self.halted:
            raise self.limit

    def idle(self):
        """flush, when the input pauses: a limit reached then (inside the reading of the
        input) stops the run at the next record."""
        try:
            self.flush()
        except errors.LimitReached as exc:
            self.limit = exc

    def flush(self):
        """Request the batch being filled and write everything requested."""
        self.check()
        if not self.halted:
            self.request()
            self.write(None)

    def request(self):
        """Request the batch being filled, as much of it as --max-bytes leaves room for;
        where that is not all, write what was requested and stop the run."""
        if not self.batch:
            return
        wanted = self.within_budget(self.batch)
        if wanted:
            size = sum(r.get("size") or 0 for r in wanted)
            self.in_flight, self.requested = self.in_flight + size, self.requested + size
            self.batch = self.batch[len(wanted):]
            self.batch_bytes = sum(r.get("size") or 0 for r in self.batch)
            self.pending.append(wanted)
            self.server.bodies.request(wanted[0]["folder"], [r["uid"] for r in wanted])
        if self.batch:
            self.write(None)
            raise errors.LimitReached(f"stopped after {self.fetched} bytes (--max-bytes "
                                      f"{self.max_bytes})", "run again to go on")

    def within_budget(self, records):
        """The first of records whose sizes fit in what --max-bytes leaves of the bytes
        requested; the first message of a run goes whatever its size, so that every run
        gets on."""
        if self.max_bytes is None:
            return records
        room, wanted = self.max_bytes - self.requested, []
        for record in records:
            size = record.get("size") or 0
            if size > room and (wanted or self.requested):
                break
            wanted.append(record)
            room -= size
        return wanted

    def stopped(self, limit, records):
        """The LimitReached to end the run with, saying how many messages are left to
        fetch (and their bytes, as their records give them): those requested and not
        written, those of the batch being filled and of the records not read yet.
        Checkpoints after the stop go nowhere: a folder not fetched to the end is listed
        again by the next run."""
        self.halted = True
        left = [r for batch in self.pending if isinstance(batch, list) for r in batch]
        left += self.batch + ([self.arriving] if self.arriving else [])
        try:
            left += [record for lineno, record in records
                     if Checkpoint.of(record, lineno) is None and not is_update(record)]
        except errors.DataError:
            pass  # what is left counts up to the malformed line
        size = sum(r.get("size") or 0 for r in left if isinstance(r.get("size"), int))
        return errors.LimitReached(f"{limit.reason}; {diagnostics.count(len(left), 'message')}"
                                   f" ({diagnostics.count(size, 'byte')}) left to fetch",
                                   limit.advice, limit.wait)

    def checkpoint(self, record):
        """A folder checkpoint goes on after its folder's messages; it no longer vouches
        for the folder once one of them could not be fetched.  mboxrd has no place for
        it."""
        self.request()
        self.pending.append(record)
        self.write(IN_FLIGHT)

    def write(self, budget):
        """Write what has come, and wait for more while over budget bytes are in flight
        (None: until nothing is)."""
        while self.pending:
            if isinstance(self.pending[0], tuple):  # passed on
                write_record(self.out, self.pending.popleft()[0])
            elif isinstance(self.pending[0], dict):
                record = self.pending.popleft()
                if record["folder"] in self.failed_folders:
                    withdraw(record)
                if not self.mbox:
                    write_record(self.out, record)
            elif (budget is None or self.in_flight > budget
                  or len(self.server.bodies) > MAX_REQUESTS):
                self.receive()
            else:
                break

    def update(self, record):
        """An update record (imapstream(7)) goes on as it is, nothing fetched, with its
        folder's messages; mboxrd has no place for it."""
        if self.batch and record["folder"] != self.batch[0]["folder"]:
            self.flush()
        if not self.mbox:
            write_record(self.out, record)
    def pass_on(self, record):
        """A record with copy_of goes on unfetched (its bytes are in the backup), after
        the messages before it."""
        self.request()
        self.pending.append((record,))
        self.write(IN_FLIGHT)

    def warn(self, message):
        self.progress.clear()
        diagnostics.warn(PROG, message)

    def fail(self, folder, message, count=1):
        if message:
            self.warn(message)
        self.failed += count
        self.failed_folders.add(folder)

    def receive(self):
        """Write the messages of the oldest answer, the records it answers taken from
        the oldest batch (the whole batch, or its first part after a drop)."""
        answer = self.server.bodies.answer()
        batch = self.pending[0]
        done, batch[:] = batch[:len(answer.uids)], batch[len(answer.uids):]
        if not batch:
            self.pending.popleft()
        self.in_flight -= sum(r.get("size") or 0 for r in done)
        folder = answer.folder
        self.progress.folder = folder
        if answer.uidvalidity is None or answer.error:
            self.fail(folder, answer.error and str(answer.error), len(done))
            return
        current = []
        for record in done:
            if record.get("uidvalidity", answer.uidvalidity) != answer.uidvalidity:
                self.fail(folder, f"{folder}: UID {record['uid']}: UIDVALIDITY is now "
                                  f"{answer.uidvalidity}, not {record['uidvalidity']}; "
                                  f"list it again")
            else:
                current.append(record)
        for record in current:
            item = answer.fetched.get(record["uid"])
            if item is None or item.body is None:
                self.fail(folder, f"{folder}: UID {record['uid']} is no longer on the server")
                continue
            self.emit(record, item, answer.uidvalidity)

    def check_peek(self, record, flags):
        """Some servers set \\Seen when they send a body, PEEK or not: warn once per folder
        when a message whose record has flags without \\Seen comes back with it.  The
        message keeps the flags FETCH gave, the server's as they now are."""
        given = record.get("flags")
        if (record["folder"] not in self.marked_seen and isinstance(given, list)
                and _seen(flags) and not _seen(given)):
            self.marked_seen.add(record["folder"])
            self.warn(f"{record['folder']}: the server marked messages \\Seen despite "
                      f"BODY.PEEK")

    def emit(self, record, item, uidvalidity):
        data = item.body
        for what in item.left_out:
            self.warn(f"{record['folder']}: UID {record['uid']}: left out {what}")
        self.check_peek(record, item.flags)
        record = dict(record, uidvalidity=uidvalidity, flags=item.flags)
        # A size or date the server did not send, or sent as no record can carry it,
        # stays as the listing gave it.
        for key in ("size", "internaldate"):
            if getattr(item, key) is not None:
                record[key] = getattr(item, key)
        record.pop("length", None)
        if "message_id" not in record:
            record["message_id"] = message_id(header_section(data))
        if self.mbox:
            from ..mbox.mboxrd import format_pieces  # here: --mbox alone writes mboxrd

            self.out.writelines(format_pieces(to_lf(data), record))
            self.out.flush()
        else:
            write_message(self.out, record, data)
        self.progress.add(len(data))
        self.fetched += len(data)


def _seen(flags):
    return any(isinstance(f, str) and f.lower() == "\\seen" for f in flags)


def run():
    cli.entry_point(main)
