"""Fuzzing the mbox readers with hypothesis: iter_messages (mbox-merge reading an mbox),
HeldScan and Holdings on files (mbox-ids, mbox-merge), plain and compressed, through
small and large read blocks.  A file is a valid prefix of messages, ours and foreign,
then damage: cut short, followed by garbage, or bytes overwritten.  Every message before
the damage is read as it was written; the only error is a DataError."""

import bz2
import gzip
import io
import lzma
import os
import tempfile
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imapstream import errors
from imapstream.commands import mbox_merge
from imapstream.errors import DataError
from imapstream.mbox import scan as scan_module
from imapstream.mbox.mboxrd import format_message, quote_from
from imapstream.mbox.reader import Holdings, iter_messages, scan
from imapstream.mbox.scan import HeldScan
from imapstream.stream import write_message

LINES = [b"From a@b Sat Jul  1 10:00:00 2005", b">From x", b"From ", b"Status: RO",
         b"X-Status: F", b"X-Keywords: a", b"X-Imapstream: uid=1; octets=9", b"X-UID: 3",
         b"Content-Length: 9", b"", b"\r", b"Subject: x", b" folded", b"\xff\x80",
         b"Message-ID: <a@b>"]
bodies = st.one_of(st.binary(max_size=120),
                   st.lists(st.sampled_from(LINES), max_size=10).map(b"\n".join))
records = st.fixed_dictionaries({
    "folder": st.text(max_size=8), "delimiter": st.sampled_from(["/", None]),
    "uidvalidity": st.integers(1, 2**32 - 1), "uid": st.integers(1, 2**32 - 1),
    "size": st.integers(0, 10**6),
    "flags": st.lists(st.sampled_from(["\\Seen", "\\Flagged", "$label1"]), unique=True),
    "internaldate": st.sampled_from(["2005-07-01T12:00:00+02:00", "1970-01-01T00:00:00Z"])})


def foreign(body):
    """A message as another program stores it: no X-Imapstream line after the From line
    (a message that has one there is one of ours, and must agree with it)."""
    text = quote_from(b"Received: by mx\n" + body + (b"" if body.endswith(b"\n") else b"\n"))
    return b"From someone@example.org Fri Jul  1 10:00:00 2005\n" + text + b"\n"


def ours(record, body):
    """(text, what a reader must give): the record's fields and the body as given."""
    return format_message(body, record), (record, body)


def foreign_expected(body):
    """(text, what a reader must give) for a foreign message: where no line of body
    begins with a header name imapstream(7) removes, or holds a CR (whose place in the
    header section this fixed expectation leaves open), the message as written."""
    text = foreign(body)
    data = b"Received: by mx\n" + body + (b"" if body.endswith(b"\n") else b"\n")
    plain = b"\r" not in body and not any(
        line.lower().lstrip(b">").startswith(name) for line in body.split(b"\n")
        for name in (b"status", b"x-status", b"x-keywords", b"x-uid", b"x-imap"))
    # An X-Imapstream field with octets anywhere in the header section makes it one of
    # ours that a mail client rewrote (imapstream(7)).
    ours_edited = any(line.lower().startswith(b"x-imapstream:") and b"octets=" in line
                      for line in body.split(b"\n"))
    return text, ({} if ours_edited else {"uid": None}, data if plain else None)


texts = st.one_of(st.builds(ours, records, bodies), st.builds(foreign_expected, bodies))
TOKENS = [b"From ", b"\nFrom x\n", b"\n", b"\n\n", b">", b"X-Imapstream: ", b"octets=",
          b"octets=-1", b"octets=99999999999999999999", b"uid=x", b"; ", b"%", b"%ZZ",
          b"internaldate=9999-99-99", b"Status: RO\n", b"\xff", b"\x00"]
garbage = st.one_of(st.binary(max_size=60),
                    st.lists(st.sampled_from(TOKENS), max_size=8).map(b"".join))


@st.composite
def damaged(draw):
    """(texts, damaged file, how many messages come whole before the damage, whether the
    damage only cut the file short, as a crash does)."""
    pairs = draw(st.lists(texts, min_size=1, max_size=5))
    items = [text for text, _expected in pairs]
    whole = b"".join(items)
    at = draw(st.integers(0, len(whole)))
    if draw(st.booleans()):
        file = whole[:at] + draw(garbage)  # cut short, then anything
    else:
        patch = draw(garbage)  # bytes overwritten, the rest kept
        file = whole[:at] + patch + whole[at + len(patch):]
    cut_only = whole.startswith(file)
    # After a cut, a message is whole if its text is.  After other damage, if its text
    # and the "From " of the next one come before it: the separator is "\nFrom ", and
    # the last message has no next, so it is whole only if what follows starts one.
    intact, end = 0, 0
    for number, text in enumerate(items):
        end += len(text)
        if cut_only:
            intact += end <= len(file)
        elif end + 5 <= at or (number == len(items) - 1 and file.startswith(whole)
                               and file[end:][:5] == b"From "):
            intact += 1
    return pairs, file, intact, cut_only


def as_written(pairs):
    """[(offset, record fields, data or None)] as the strategy wrote them: the fixed
    expectation, not a reader's."""
    expected, offset = [], 0
    for text, (record, data) in pairs:
        fields = {k: record.get(k) for k in ("folder", "uidvalidity", "uid", "flags")
                  if k in record}
        expected.append((offset, fields, data))
        offset += len(text)
    return expected


def matches(got, expected):
    """Whether (offset, record[, data]) items read equal the expected ones, item for item."""
    return len(got) == len(expected) and all(
        item[0] == offset and all(_same(k, item[1].get(k), v) for k, v in fields.items())
        and (data is None or len(item) < 3 or item[2] == data)
        for item, (offset, fields, data) in zip(got, expected, strict=True))


def _same(key, got, wanted):
    """Flags come back in the order of the flag headers (imapstream(7)), not as given."""
    return sorted(got) == sorted(wanted) if key == "flags" else got == wanted


def read(stream):
    """(offset, record, data) per message until the end or a DataError."""
    got = []
    try:
        for item in iter_messages(stream, "fuzz"):
            got.append(item)
    except DataError:
        pass
    return got


blocks = st.sampled_from([8, 64, scan_module.BLOCK])


@settings(max_examples=300, deadline=None)
@given(damaged(), blocks)
def test_iter_messages_keeps_every_whole_message(case, block):
    pairs, file, intact, _cut_only = case
    expected = as_written(pairs)
    with mock.patch.object(scan_module, "BLOCK", block):
        assert matches(read(io.BytesIO(b"".join(t for t, _e in pairs))), expected)
        assert matches(read(io.BytesIO(file))[:intact], expected[:intact])


def held_scan(raw):
    got = []
    try:
        for item in HeldScan(raw, "", "fuzz"):
            got.append(item)
    except DataError:
        pass
    return got


def holdings(path, keep_index=False):
    """The rows of Holdings(path), or None for a DataError."""
    try:
        return list(Holdings(path, keep_index=keep_index).records())
    except DataError:
        return None


@settings(max_examples=200, deadline=None)
@given(damaged(), blocks)
def test_held_scan_and_holdings_keep_every_whole_message(case, block):
    pairs, file, intact, cut_only = case
    items, expected = [t for t, _e in pairs], as_written(pairs)
    with tempfile.TemporaryDirectory() as directory, \
            mock.patch.object(scan_module, "BLOCK", block):
        good, bad = os.path.join(directory, "good.mbox"), os.path.join(directory, "bad.mbox")
        for path, data in ((good, b"".join(items)), (bad, file)):
            with open(path, "wb") as f:
                f.write(data)
        with open(good, "rb") as g, open(bad, "rb") as b:
            assert matches(held_scan(g), expected)
            assert matches(held_scan(b)[:intact], expected[:intact])
        rows = holdings(bad, keep_index=True)  # writes the sidecar when it reads well
        if cut_only:  # a torn tail at most, never an error
            assert rows is not None
        if rows is not None:
            assert matches(rows[:intact], expected[:intact])
        assert holdings(bad) == rows  # with the sidecar, the same


COMPRESS = {".gz": lambda data: gzip.compress(data, mtime=0), ".bz2": bz2.compress,
            ".xz": lzma.compress}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(texts, min_size=1, max_size=3), min_size=1, max_size=3),
       st.sampled_from(sorted(COMPRESS)), st.data())
def test_compressed_files_keep_every_whole_stream(appends, suffix, data):
    """One member or stream per append; the file cut short, or bytes of it overwritten."""
    members = [COMPRESS[suffix](b"".join(text for text, _e in texts)) for texts in appends]
    whole = b"".join(members)
    at = data.draw(st.integers(0, len(whole)))
    if data.draw(st.booleans()):
        file = whole[:at]
    else:
        patch = data.draw(st.binary(min_size=1, max_size=4))
        file = whole[:at] + patch + whole[at + len(patch):]
    complete, kept, end = 0, 0, 0
    trailer = 8 if suffix == ".gz" else 0  # a gzip member cut in its trailer keeps its data
    for member, texts in zip(members, appends, strict=True):
        end += len(member)
        complete += len(texts) if end <= at else 0
        kept += len(texts) if end - trailer <= at else 0
    with tempfile.TemporaryDirectory() as directory:
        good, bad = (os.path.join(directory, name + suffix) for name in ("good", "bad"))
        for path, content in ((good, whole), (bad, file)):
            with open(path, "wb") as f:
                f.write(content)
        expected = as_written([pair for texts in appends for pair in texts])
        assert matches(list(Holdings(good).records()), expected)
        rows = holdings(bad)
        if file == whole[:at]:  # cut short: exactly the whole streams are held
            assert matches(rows, expected[:kept])
        elif rows is not None:
            assert matches(rows[:complete], expected[:complete])


def test_a_crash_within_the_first_from_line_is_a_torn_tail(tmp_path, capsys):
    """A file that is a prefix of "From " is a new file whose first append was cut
    short, not a file that is not an mbox: mbox-merge cuts it off and goes on."""
    target = tmp_path / "INBOX.mbox"
    target.write_bytes(b"Fro")
    stdin = io.BytesIO()
    write_message(stdin, {"folder": "INBOX", "uidvalidity": 7, "uid": 1}, b"Subject: x\r\n")
    stdin.seek(0)
    assert mbox_merge.main([str(target)], stdin, io.BytesIO()) == errors.OK
    assert capsys.readouterr().err.startswith(
        f"mbox-merge: {target}: cut off a torn last message at byte 0\n")
    assert [(r["uid"], data) for _o, r, data in scan(str(target))] == [
        (1, b"Subject: x\n")]


@pytest.mark.parametrize("suffix", sorted(COMPRESS))
def test_a_crash_within_the_first_stream_of_a_new_file(tmp_path, capsys, suffix):
    """The first append to a new compressed file, killed before its member or stream was
    finished: nothing is held, and mbox-merge cuts the file back to empty."""
    target = tmp_path / f"INBOX.mbox{suffix}"
    stdin = io.BytesIO()
    for uid in (1, 2):
        write_message(stdin, {"folder": "INBOX", "uidvalidity": 7, "uid": uid}, b"x\r\n")
    assert mbox_merge.main([str(target)], io.BytesIO(stdin.getvalue()), io.BytesIO()) == 0
    target.write_bytes(target.read_bytes()[:-9])
    assert list(Holdings(str(target)).records()) == []
    assert mbox_merge.main([str(target)], io.BytesIO(stdin.getvalue()), io.BytesIO()) == 0
    assert "cut off a compressed stream left unfinished by a crash" in capsys.readouterr().err
    assert [r["uid"] for _o, r, _d in scan(str(target))] == [1, 2]

