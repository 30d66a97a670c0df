"""HeldScan, which skips the data of a message of ours where its X-Imapstream octets and
the From line after it agree, against the plain reading: every message from its From
line to the next one, parsed whole by parse_held.  Plain and gzip files, through small
and large read blocks, whole, cut short, or with a length that lies."""

import gzip
import io
import os
import re
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imapstream.errors import DataError
from imapstream.mbox import scan
from imapstream.mbox.mboxrd import MboxError, format_message, parse_held, parse_message
from imapstream.mbox.scan import CutStream, HeldScan, TornTail, spans

LINES = [b"From a@b Sat Jul  1 10:00:00 2005", b">From x", b">>From y", b"From ", b"a From b",
         b"Status: RO", b">X-Status: F", b"X-Imapstream: uid=1; octets=9", b"Message-ID: <m@x>",
         b"", b"\r", b"Subject: x", b" folded", b"x" * 70]
bodies = st.tuples(st.lists(st.sampled_from(LINES), max_size=6),
                   st.lists(st.sampled_from(LINES), max_size=12), st.booleans()).map(
    lambda t: b"\n".join(t[0]) + b"\n\n" + b"\n".join(t[1]) + (b"\n" if t[2] else b""))
records = st.fixed_dictionaries({"folder": st.sampled_from(["INBOX", "a b"]),
                                 "uidvalidity": st.integers(1, 9), "uid": st.integers(1, 99),
                                 "size": st.integers(0, 5000), "flags": st.just(["\\Seen"])})
FOREIGN = b"From someone@example.org Fri Jul  1 10:00:00 2005\nSubject: f\n\n>From z\nbody\n\n"
texts = st.one_of(st.builds(lambda r, b: format_message(b, r), records, bodies),
                  st.just(FOREIGN))
blocks = st.sampled_from([8, 256, scan.BLOCK])


def reference(data):
    """(rows, end state) reading From line to From line: the end state is None, or
    ("torn", offset), ("damaged", offset) or ("error", None)."""
    rows = []
    try:
        for buf, start, end, offset, last in spans(io.BytesIO(data), "t"):
            try:
                record = parse_held(buf, start, end, last)
                record.pop("unmatched", None)  # HeldScan lists it apart
                rows.append((offset, record))
            except MboxError:
                return rows, ("torn" if last else "damaged", offset)
    except DataError:
        return rows, ("error", None)
    return rows, None


def held(path, suffix=""):
    rows = []
    with open(path, "rb") as raw:
        try:
            rows.extend(HeldScan(raw, suffix, "t"))
        except TornTail as exc:
            return rows, ("torn", exc.offset)
        except CutStream:
            return rows, ("cut", None)
        except DataError as exc:
            damaged = re.search(r"message at byte (\d+)", str(exc))
            return rows, ("damaged", int(damaged.group(1))) if damaged else ("error", None)
    return rows, None


def write(tmp_path, data, suffix=""):
    path = tmp_path / f"t.mbox{suffix}"
    path.write_bytes(gzip.compress(data, mtime=0) if suffix else data)
    return path


@settings(max_examples=300, deadline=None)
@given(st.lists(texts, min_size=1, max_size=5), blocks, st.sampled_from(["", ".gz"]),
       st.data())
def test_held_scan_reads_as_from_line_to_from_line(tmp_path_factory, items, block, suffix,
                                                   data):
    """Whole files, and files cut short anywhere (a crash mid-append): the same records
    and the same torn tail."""
    whole = b"".join(items)
    cut = data.draw(st.sampled_from([len(whole), data.draw(st.integers(0, len(whole)))]))
    tmp_path = tmp_path_factory.mktemp("scan")
    with mock.patch.object(scan, "BLOCK", block):
        assert held(write(tmp_path, whole[:cut], suffix), suffix) == reference(whole[:cut])


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, min_size=2, max_size=4), blocks, st.sampled_from(["", ".gz"]),
       st.data())
def test_a_length_that_lies_reads_as_from_line_to_from_line(tmp_path_factory, items, block,
                                                             suffix, data):
    """Except a length too long by exactly the number of lines it quotes (and one more
    where the data does not end in LF: two LFs of padding), which the skip takes for
    the length of a message that quotes none and ends in LF (see HeldScan).  Such a
    message is kept as a foreign one, or torn where it is the last and shorter than it
    says."""
    number = data.draw(st.integers(0, len(items) - 1))
    match = re.search(rb"octets=(\d+)\n", items[number])
    if not match or items[number] == FOREIGN:
        return
    octets, quoted = int(match.group(1)), len(re.findall(rb"(?m)^>+From ", items[number]))
    lie = data.draw(st.sampled_from([octets + 1, octets - 1, octets + 7, octets * 2 + 3,
                                     octets // 2, 10**12]))
    data_lf = parse_message(items[number])[1]
    unpadded = 1 if data_lf and not data_lf.endswith(b"\n") else 0
    if quoted and lie == octets + quoted + unpadded:
        return
    items[number] = items[number][:match.start(1)] + str(lie).encode() + \
        items[number][match.end(1):]
    lying = b"".join(items)
    tmp_path = tmp_path_factory.mktemp("lie")
    with mock.patch.object(scan, "BLOCK", block):
        assert held(write(tmp_path, lying, suffix), suffix) == reference(lying)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_quoted_lines_and_a_last_line_without_lf(tmp_path, suffix):
    record = {"folder": "INBOX", "uidvalidity": 7, "uid": 1, "size": 100, "flags": []}
    items = [format_message(b"Subject: q\n\nFrom a\n>From b\nend\n", record),
             format_message(b"Subject: no lf\n\nlast line", record),
             format_message(b"Subject: plain\n\nbody\n", record),
             format_message(b"Subject: both\n\n>>From c\nno lf", record)]
    path = write(tmp_path, b"".join(items), suffix)
    rows, state = held(path, suffix)
    assert state is None and (rows, state) == reference(b"".join(items)) and len(rows) == 4


def test_a_torn_message_that_ends_in_an_empty_line_is_torn(tmp_path):
    """Cut one byte short, a message with one quoted line measures as long as it would
    be without: at the end of the file only counting the line tells."""
    record = {"folder": "INBOX", "uidvalidity": 7, "uid": 1, "size": 100, "flags": []}
    first = format_message(b"Subject: a\n\nbody\n", record)
    torn = format_message(b"Subject: b\n\n>From x\n\n", record)[:-1]
    assert held(write(tmp_path, first + torn)) == ([(0, reference(first)[0][0][1])],
                                                   ("torn", len(first)))


def test_the_data_of_a_message_of_ours_is_not_read(tmp_path, monkeypatch):
    record = {"folder": "INBOX", "uidvalidity": 7, "uid": 1, "size": 5 << 20, "flags": []}
    big = format_message(b"Subject: big\n\n" + b"0123456789abcde\n" * (1 << 18), record)
    path = write(tmp_path, big + format_message(b"Subject: small\n\nx\n", record))
    read = []
    for name in ("pread", "preadv"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, real=real: read.append(real(*a)) or read[-1])
    rows, state = held(path)
    assert state is None and len(rows) == 2
    assert sum(n if isinstance(n, int) else len(n) for n in read) < len(big) // 8
