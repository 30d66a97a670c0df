"""The label journal beside an mbox file that holds messages from Gmail: the labels
they have on the server now, where these changed after the message was stored
(imapstream(7), "Gmail").  A message's X-Gmail-Labels line keeps the labels it had when
it was stored; the journal, the later ones.

NAME.mbox has its journal in .NAME.mbox.labels (hidden, mode 0600), made empty when
the first message with labels is appended, so that imapbackup knows to follow them.
Each line is one NDJSON object {"gm_msgid", "labels"}; a message's last line counts.
Lines are appended under the mbox file's lock, in one write, then synced; a line
without its LF (a kill during the write) or that is not such an object is ignored, so
a reader sees either the old labels or the new.  A later run finds the same
difference again and writes it then."""

import os
from collections import defaultdict

from ..records import check_fields, orjson
from .append import lock, unlock
from .archive import mbox_files
from .reader import Holdings

SUFFIX = ".labels"


def path_for(mbox):
    directory, name = os.path.split(mbox)
    return os.path.join(directory, f".{name}{SUFFIX}")


def touch(mbox):
    """Make the journal of mbox, empty, unless it exists."""
    os.close(os.open(path_for(mbox), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))


def load(mbox):
    """{gm_msgid: labels} of the journal of mbox ({} without one)."""
    try:
        with open(path_for(mbox), "rb") as f:
            lines = f.read().split(b"\n")[:-1]  # the last piece ends without LF
    except FileNotFoundError:
        return {}
    labels = {}
    for line in lines:
        try:
            entry = orjson().loads(line)
            check_fields(entry, "label journal")
        except Exception:  # noqa: BLE001 - a damaged line counts for nothing
            continue
        if isinstance(entry, dict) and isinstance(entry.get("gm_msgid"), str) \
                and isinstance(entry.get("labels"), list):
            labels[entry["gm_msgid"]] = entry["labels"]
    return labels


def append(mbox, entries):
    """Append entries ({"gm_msgid", "labels"}) to the journal of mbox, under its lock."""
    fd, dotlock = lock(mbox, create=False)
    try:
        journal = os.open(path_for(mbox), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                          | os.O_CLOEXEC, 0o600)
        try:
            os.write(journal, b"".join(orjson().dumps(e) + b"\n" for e in entries))
            os.fsync(journal)
        finally:
            os.close(journal)
    finally:
        unlock(fd, dotlock)


def follow(directory, records):
    """Note in the journals of directory the labels of each message record (with
    gm_msgid) whose message a file holds with other labels (compared as sets) than
    its journal, else its X-Gmail-Labels line, gives; {file: how many noted}."""
    held = defaultdict(dict)  # gm_msgid: {file: its labels there now}
    for path in mbox_files(directory):
        journal = load(path)
        for _offset, record in Holdings(path).records():
            gm_msgid = record.get("gm_msgid")
            if gm_msgid:
                held[gm_msgid][path] = journal.get(gm_msgid, record.get("labels") or [])
    changed = defaultdict(list)
    for record in records:
        gm_msgid, labels = record.get("gm_msgid"), record.get("labels")
        if not isinstance(labels, list):
            continue
        for path, now in held.get(gm_msgid, {}).items():
            if set(labels) != set(now):
                held[gm_msgid][path] = labels
                changed[path].append({"gm_msgid": gm_msgid, "labels": labels})
    for path, entries in changed.items():
        append(path, entries)
    return {path: len(entries) for path, entries in changed.items()}
