"""A sidecar's rows found and replaced by their bytes, without reading the others
(sidecar.py has the format).

A line of rows is a JSON list of rows [offset, folder, delimiter, uidvalidity, uid,
...], written by orjson without spaces.  A string, a string or null and two integers,
each after a comma, come one after another nowhere else in such a line: a row's other
strings stand alone or in lists of strings, and a quote inside a string is escaped.  So
the last such run of bytes for a key is its last row's, which starts at the "[" just
before its offset and ends at the first "]" from which the bytes so far are one JSON
value."""

import re

from ..records import orjson, positive_int

AFTER_FOLDER = rb'(null|"(?:[^"\\]|\\.)*"),[0-9]+,[0-9]+,'  # compiled when first used
UNKNOWN = object()  # delimiter_of a folder no row has


def find(line, key, delimiter):
    """(start, end, row) of the last row in line with key (folder, uidvalidity, uid) and
    delimiter, its bytes line[start:end]; None if there is none."""
    folder, uidvalidity, uid = key
    if not (isinstance(folder, str) and isinstance(delimiter, str | None)
            and positive_int(uidvalidity) and positive_int(uid)):
        return None
    dumps = orjson().dumps
    at = line.rfind(b",%b,%b,%d,%d," % (dumps(folder), dumps(delimiter), uidvalidity, uid))
    start = line.rfind(b"[", 0, at) if at > 0 else -1
    if start < 0 or not line[start + 1:at].isdigit():
        return None
    end = at
    while (end := line.find(b"]", end + 1)) >= 0:
        try:
            row = orjson().loads(line[start:end + 1])
        except ValueError:
            continue  # a list inside the row, or a "]" inside a string
        if isinstance(row, list) and len(row) > 4 and (row[1], row[3], row[4]) == key:
            return start, end + 1, row
        return None
    return None


def delimiter_of(lines, folder):
    """The delimiter of the first row of folder in lines, or UNKNOWN."""
    needle = b",%b," % orjson().dumps(folder)
    for line in lines:
        at = 0
        while (at := line.find(needle, at) + 1) > 0:
            if match := re.compile(AFTER_FOLDER).match(line, at + len(needle) - 1):
                return orjson().loads(match[1])
    return UNKNOWN


def joined(lines, replacements):
    """One line of rows: those of lines, one after another, with the bytes at
    replacements {(line number, start, end): row} replaced by those rows."""
    parts = []
    for number, line in enumerate(lines):
        done, pieces = 0, []
        for (_n, start, end), row in sorted(r for r in replacements.items() if r[0][0] == number):
            pieces += [line[done:start], orjson().dumps(row)]
            done = end
        line = b"".join([*pieces, line[done:]])
        if line != b"[]":
            parts.append(line[1:-1])
    return b"[" + b",".join(parts) + b"]"
