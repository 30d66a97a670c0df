"""Folding the flag journal (flagjournal.py) into its plain mbox file, and pruning the
messages it says are gone from the server, under the file's lock, the journal's lines
synced before and rewritten after.

Where each changed message has its Status, X-Status and X-Keywords lines right after
its X-Imapstream line and nowhere else, and its new flags fit in their length (the
writer leaves room: flagheaders.flag_headers), the new lines are written over the old ones
in place and synced: nothing else moves, and a kill leaves each message's old lines or
its new ones, a journal that holds them still, and a fold that is done again.

Otherwise the file is written anew beside itself (.NAME.mbox.fold.XXXXXXXX), synced
and renamed over the old one, so that a kill at any moment leaves either the old file
or the new one, each whole.  Only the flag headers of the changed messages are new
bytes, with their room: the rest is copied from the old file in the kernel
(copy_file_range).  Either way the sidecar is written from the old one's rows, their
flags new and offsets moved, so a fold costs a few writes or a copy, never a scan; in
place, the changed rows are found by their bytes (rowspans.py) and the sidecar written
from its segments' bytes with them replaced, no other row read.

A message's flag fields are replaced by the flag headers format_message writes, right
after its X-Imapstream line (mboxrd.flag_fields), also where a mail client moved them;
the journal keeps the flags of a message whose X-Imapstream line is not its second
(Thunderbird's), and all of a compressed file, for the readers that apply it."""

import bisect
import contextlib
import errno
import operator
import os
import tempfile

from . import compression, flagjournal, rowspans, sidecar
from .flagheaders import OWN_FLAGS, flag_headers, stored_flags
from .mboxrd import flag_fields
from .uidranges import Held

HEAD = 1 << 12  # bytes read first for a message's flag headers; more where needed
MAX_HEAD = 1 << 20


def fold(path, index, journal, folders=None, prune_before=None):
    """Fold journal into the plain mbox file path, whose lock the caller holds and which
    index (a sidecar.Index) describes whole, its sidecar to have folders (default the
    index's); leave out the messages first missing at or before prune_before (an aware
    datetime), if given.  Returns how many messages were (changed, pruned); the journal
    is written back with what is left of it."""
    if compression.suffix_of(path):
        return 0, 0
    if prune_before is None:
        done = _fold_found(path, index, journal, folders)
        if done is not None:
            return done
    rows = sorted(index.rows, key=operator.itemgetter(0))
    left = flagjournal.Journal()
    changes, drop = {}, set()
    entries = journal.entries
    for row in rows if entries else ():
        found = sidecar.row_key(row)
        entry = entries.get(found)
        if not entry:
            continue
        since = entry.get("missing_since")
        if prune_before is not None and since is not None and _when(since) <= prune_before:
            drop.add(row[0])
            continue
        if since is not None:
            left.entries.setdefault(found, {})["missing_since"] = since
        if "flags" in entry and set(stored_flags(entry["flags"])) != set(
                row[sidecar.FLAGS] or ()):
            changes[row[0]] = (found, entry["flags"])
    if not changes and not drop:
        if left.entries != journal.entries:
            flagjournal.rewrite(path, left)
        return 0, 0
    try:
        fd, writable = os.open(path, os.O_RDWR | os.O_CLOEXEC), True
    except PermissionError:  # a file made read-only: rewritten by renaming over it
        fd, writable = os.open(path, os.O_RDONLY | os.O_CLOEXEC), False
    try:
        size = os.fstat(fd).st_size
        if size != index.raw_end:
            return 0, 0  # not what the index describes: the journal stays as it is
        offsets = [row[0] for row in rows]
        for offset, (found, flags) in list(changes.items()):
            after = bisect.bisect_right(offsets, offset)
            block = _block(fd, offset, offsets[after] if after < len(offsets) else size)
            if block is None:  # no X-Imapstream line second: the journal keeps its flags
                left.entries.setdefault(found, {})["flags"] = flags
                del changes[offset]
            else:
                changes[offset] = (block, flags)
        if not changes and not drop:
            flagjournal.rewrite(path, left)
            return 0, 0
        in_place = _in_place(changes) if writable and not drop else None
        if in_place is not None:
            new_rows = _overwrite(fd, rows, offsets, in_place)
        else:
            new_rows = _write(path, fd, size, rows, changes, drop)
    finally:
        os.close(fd)
    held = index.held
    if drop:
        held = Held()
        for row in new_rows:
            held.add(sidecar.record(row))
    with open(path, "rb") as new:
        st = os.fstat(new.fileno())
        sidecar.save(path, sidecar.Index(st, st.st_size, st.st_size, new_rows,
                                         *sidecar.windows(new.fileno(), st.st_size),
                                         folders=index.folders if folders is None else folders,
                                         held=held))
    flagjournal.rewrite(path, left)
    return len(changes), len(drop)


def _fold_found(path, index, journal, folders):
    """fold() without reading the sidecar's rows: each changed message's row found by its
    bytes (rowspans.py), its new flag lines written over the old ones, and the sidecar
    written anew from its segments' bytes with those rows replaced, as fold() would
    write it.  None where that cannot be done (rows appended in this visit, a row not
    found so, new flags that do not fit, a file made read-only): fold() then reads
    every row."""
    base = index.base
    if base is None or index.new_rows or not base.segments():
        return None
    lines = [line for line, _state in base.segments()]
    left = flagjournal.Journal()
    changes = {}  # offset: (key, flags, (segment, start, end) of its row, row)
    for key, entry in journal.entries.items():
        if ((key[0], key[1]), key[2]) not in index.held:
            continue  # not in the file: the journal forgets it
        if entry.get("missing_since") is not None:
            left.entries.setdefault(key, {})["missing_since"] = entry["missing_since"]
        if "flags" not in entry:
            continue
        checkpoint = index.folders.get(key[0])
        delimiter = checkpoint.delimiter if checkpoint else rowspans.delimiter_of(lines, key[0])
        for number in reversed(range(len(lines))):
            if (found := rowspans.find(lines[number], key, delimiter)) is not None:
                break
        else:
            return None
        start, end, row = found
        if set(stored_flags(entry["flags"])) != set(row[sidecar.FLAGS] or ()):
            changes[row[0]] = (key, entry["flags"], (number, start, end), row)
    if not changes:
        if left.entries != journal.entries:
            flagjournal.rewrite(path, left)
        return 0, 0
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except PermissionError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size != index.raw_end:
            return 0, 0  # not what the index describes: the journal stays as it is
        blocks = {}
        for offset, (key, flags, _span, _row) in changes.items():
            # The header section ends before the next message: no need to know where.
            if (block := _block(fd, offset, size)) is None:
                left.entries.setdefault(key, {})["flags"] = flags
            else:
                blocks[offset] = (block, flags)
        writes = _in_place(blocks) if blocks else {}
        if writes is None:
            return None
        if writes:
            _write_in_place(fd, writes)
            replaced = {}
            for offset, (_at, _new, flags) in writes.items():
                _key, _flags, span, row = changes[offset]
                replaced[span] = [*row[:sidecar.FLAGS], stored_flags(flags),
                                  *row[sidecar.FLAGS + 1:]]
            sidecar.save_joined(path, fd, index, lines, replaced,
                                index.folders if folders is None else folders)
    finally:
        os.close(fd)
    flagjournal.rewrite(path, left)
    return len(writes), 0


def _when(date):
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(date)
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # no date: never old enough
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _write(path, src, size, rows, changes, drop):
    """Write the new file, the flag headers at changes {offset: (block, flags)} new and
    the messages at the offsets in drop left out, and rename it over path; its rows."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=directory,
                                         prefix=f".{os.path.basename(path)}.fold.")
    new_rows, done, delta = [], 0, 0
    try:
        for number, row in enumerate(rows):
            offset = row[0]
            end = rows[number + 1][0] if number + 1 < len(rows) else size
            if offset in drop:
                _copy(src, handle, done, offset)
                done, delta = end, delta - (end - offset)
                continue
            moved = [offset + delta, *row[1:]]
            if offset in changes:
                (at, cuts, run), flags = changes[offset]
                new = flag_headers(flags)
                _copy(src, handle, done, offset + at)
                os.write(handle, new)  # a few dozen bytes: written whole
                done = offset + at
                for name, start, stop in cuts:
                    if name not in OWN_FLAGS:
                        continue  # Gmail's labels stay
                    if start < run:  # ours, a line each: the next may look like folding
                        stop = min(stop, run)
                    _copy(src, handle, done, offset + start)
                    done = offset + stop
                    delta -= stop - start
                delta += len(new)
                moved[sidecar.FLAGS] = stored_flags(flags)
            new_rows.append(moved)
        _copy(src, handle, done, size)
        os.fsync(handle)
        os.close(handle)
        handle = None
        os.replace(temporary, path)
    except BaseException:
        if handle is not None:
            os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # the rename
    finally:
        os.close(fd)
    return new_rows


def _in_place(changes):
    """{offset: (where, flag headers, flags)} to write over each changed message's own:
    where each has its Status, X-Status and X-Keywords as lines right after its
    X-Imapstream line and nowhere else, with room for its new flags (flag_headers);
    else None."""
    writes = {}
    for offset, ((at, fields, run), flags) in changes.items():
        starts = [start for name, start, _stop in fields if name in OWN_FLAGS]
        if not starts or starts[0] != at or starts[-1] >= run:
            return None
        new = flag_headers(flags, run - at)
        if new is None:
            return None
        writes[offset] = (at, new, flags)
    return writes


def _overwrite(fd, rows, offsets, writes):
    """Write the flag headers of writes {offset: (at, headers, flags)} over the file's own,
    each as long as what it replaces, and sync them; the rows (at offsets) with the new
    flags.  A kill leaves each message's old headers or its new ones: the journal, still
    there and synced, is applied again by the next fold."""
    _write_in_place(fd, writes)
    new_rows = list(rows)
    for offset, (_at, _new, flags) in writes.items():
        number = bisect.bisect_left(offsets, offset)
        new_rows[number] = [*rows[number]]
        new_rows[number][sidecar.FLAGS] = stored_flags(flags)
    return new_rows


def _write_in_place(fd, writes):
    """Write the flag headers of writes {offset: (at, headers, flags)}, each as long as
    what it replaces, and sync them."""
    for offset, (at, new, _flags) in writes.items():
        if os.pwrite(fd, new, offset + at) != len(new):
            raise OSError(errno.EIO, "short write", "fold")
    os.fsync(fd)


def _block(src, offset, end):
    """The flag fields of the message at offset (see mboxrd.flag_fields), relative to it."""
    want = HEAD
    while True:
        head = os.pread(src, min(want, end - offset), offset)
        block = flag_fields(head)
        if block is not None or len(head) < want or want >= MAX_HEAD:
            return block
        want *= 4


def _copy(src, dst, start, end):
    """Copy src's bytes start to end to dst's position, in the kernel where it can."""
    while start < end:
        try:
            copied = os.copy_file_range(src, dst, end - start, start)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            copied = os.write(dst, os.pread(src, min(end - start, 1 << 20), start))
        if copied == 0:
            raise OSError(errno.EIO, "the file ended early", "copy")
        start += copied
