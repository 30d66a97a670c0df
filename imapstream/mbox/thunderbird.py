"""Thunderbird's layout of local folders, as hard links to a backup directory's files
(imapbackup --thunderbird).

The folder Personal/2005/Q3, in the backup directory as Personal.2005.Q3.mbox, appears
in the Thunderbird directory as Personal.sbd/2005.sbd/Q3, a hard link to that file; a
parent folder without mail of its own gets an empty file (Personal, Personal.sbd/2005)
beside its .sbd directory.  The folder name is split at its delimiter.

Each part is a file name as Thunderbird makes it (NS_MsgHashIfNecessary in its
nsMsgUtils.cpp): kept as it is, but for a part that holds a control character
(U+0001-U+001F, U+007F-U+009F) or one of / : * ? " < > | ; # (NUL too, which no file
name can hold), starts with '.', ends with '.', '~' or ' ', or is empty: that part is
cut before that character and 8 hex digits of its hash are appended ("test ?" is
"test 44d67da4", ".test" is "41a1a959"); a part over 55 UTF-16 code units is cut to 47
and gets the hash likewise.  Thunderbird passes over files whose names start with '.'
or '#' or end in '~' (so such names would hide a folder), and shows the others under
their file names."""

import os
import re

MAX_LEN = 55  # UTF-16 code units
_ILLEGAL = re.compile('[\x00-\x1f\x7f-\x9f/:*?"<>|;#]')


def lay_out(records, store, top):
    """Link each file of store that records name (dicts with "file", a path whose last
    part is the file's name in store, "folder" and "delimiter"; the first record of each
    file counts) into top, in the order of the files' names."""
    chosen = {}
    for record in records:
        if isinstance(record, dict) and record.get("file") and record.get("folder"):
            chosen.setdefault(os.path.basename(record["file"]), record)
    os.makedirs(top, mode=0o700, exist_ok=True)
    for name, record in sorted(chosen.items()):
        parts = [leaf_name(part) for part in _split(record["folder"], record.get("delimiter"))]
        path = top
        for part in parts[:-1]:
            parent = os.path.join(path, part)
            if not os.path.lexists(parent):
                os.close(os.open(parent, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            path = f"{parent}.sbd"
            os.makedirs(path, mode=0o700, exist_ok=True)
        _link(os.path.join(store, name), os.path.join(path, parts[-1]))


def _split(folder, delimiter):
    return folder.split(delimiter) if delimiter else [folder]


def string_hash(name):
    """Thunderbird's StringHash of a name: Phong's linear congruential hash over the
    UTF-16 code units, little-endian bytes, as 8 hex digits."""
    value = 1
    for byte in name.encode("utf-16-le", "surrogatepass"):
        value = (0x63C63CD9 * value + 0x9C39C33D + byte) & 0xFFFFFFFF
    return f"{value:08x}"


def leaf_name(part):
    """The file name Thunderbird gives a part of a folder name."""
    units = part.encode("utf-16-le", "surrogatepass")
    length = len(units) // 2
    illegal = _ILLEGAL.search(part)
    if illegal:
        kept = len(part[:illegal.start()].encode("utf-16-le", "surrogatepass")) // 2
    elif not part or part[0] == "." or part[-1] in ".~ ":
        kept = 0 if not part or part[0] == "." else length - 1
    else:
        kept = None
    if length > MAX_LEN:
        kept = min(kept if kept is not None else MAX_LEN, MAX_LEN - 8)
        if 0xD800 <= int.from_bytes(units[2 * kept - 2:2 * kept], "little") < 0xDC00:
            kept -= 1  # not half of a surrogate pair
    if kept is None:
        return part
    return units[:2 * kept].decode("utf-16-le", "surrogatepass") + string_hash(part)


def _link(source, target):
    """target becomes a hard link to source, replacing what it was at once."""
    if os.path.lexists(target) and os.path.samefile(source, target):
        return  # and rename(2) would leave the temporary link where it is
    temporary = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.new")
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.link(source, temporary)
    os.replace(temporary, target)
