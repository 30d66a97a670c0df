"""FETCH responses in their common shape, read with regular expressions: a response of
numbers, FLAGS, INTERNALDATE and at most one literal body section, the literal last.
Anything else gives None, and the caller uses imapclient's general parser, whose
results these equal (imapclient reads byte by byte: 2,000 message records took 0.6 s).
"""

import re

from imapclient.datetime_util import parse_to_datetime

_HEAD = re.compile(rb"(\d+) \((.*?)(?: (BODY\[[^\]]*\]) \{(\d+)\})?\Z", re.DOTALL)
_ITEM = re.compile(rb'(UID|RFC822\.SIZE) (\d+)|FLAGS \(([^()"{}]*)\)|INTERNALDATE "([^"]*)"')


def parse_simple(response, normalise_times):
    """{seq: items} as imapclient's parse_fetch_response gives it, or None."""
    if len(response) == 2 and isinstance(response[0], tuple) and response[1] == b")":
        head, literal = response[0]
    elif len(response) == 1 and isinstance(response[0], bytes) and response[0].endswith(b")"):
        head, literal = response[0][:-1], None
    else:
        return None
    match = _HEAD.match(head)
    if not match or (literal is None) != (match.group(3) is None):
        return None
    if literal is not None and int(match.group(4)) != len(literal):
        return None
    items, pos, body = {}, 0, match.group(2)
    while pos < len(body):
        item = _ITEM.match(body, pos)
        if not item:
            return None
        if item.group(1):
            items[item.group(1)] = int(item.group(2))
        elif item.group(3) is not None:
            items[b"FLAGS"] = tuple(item.group(3).split())
        else:
            items[b"INTERNALDATE"] = parse_to_datetime(item.group(4), normalise=normalise_times)
        pos = item.end()
        if pos < len(body):
            if body[pos:pos + 1] != b" ":
                return None
            pos += 1
    if literal is not None:
        items[match.group(3)] = literal
    seq = int(match.group(1))
    items[b"SEQ"] = seq
    return {seq: items}
