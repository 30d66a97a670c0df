"""Fuzzing the readers of the two streams with hypothesis: NDJSON records (read_records,
parse_record, message_key) and the message stream framing (read_messages, and mbox-merge
reading it).  Whatever follows a valid prefix, a reader yields every record or message
of the prefix, then stops or raises a DataError: never another exception."""

import io
import os
import tempfile

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from imapstream import errors
from imapstream.commands import mbox_merge
from imapstream.errors import DataError
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.records import message_key, read_records
from imapstream.stream import read_messages, write_message

# Bytes that make JSON and framing go wrong in interesting ways.
TOKENS = [b"{", b"}", b"[", b"]", b'"', b":", b",", b"\n", b"\r\n", b"\\", b"\\ud800",
          b"\\u00e9", b"1e999", b"-0", b"9" * 30, b"null", b"true", b"\xff", b"\xc3",
          b"\x00", b" ", b'"length"', b'"folder"', b'"uid"', b"From ", b"{}"]
garbage = st.one_of(st.binary(max_size=80),
                    st.lists(st.sampled_from(TOKENS), max_size=16).map(b"".join))
scalars = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
# Records as message records look, and as anything else might send them.
records = st.one_of(
    st.dictionaries(st.text(max_size=8), values, max_size=5),
    st.fixed_dictionaries({"folder": st.text(max_size=10), "uid": st.integers(-3, 2**40)},
                          optional={"uidvalidity": values, "delimiter": values}),
)


def ndjson(items):
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


def read_all(stream, idle=None):
    """(records read, the DataError that ended the reading or None)."""
    got = []
    try:
        for lineno, record in read_records(stream, idle=idle):
            got.append((lineno, record))
    except DataError as exc:
        return got, exc
    return got, None


@settings(max_examples=200, deadline=None)
@given(st.lists(records, max_size=6), garbage, st.booleans())
def test_ndjson_reader_keeps_the_valid_prefix(valid, damage, from_a_file):
    data = ndjson(valid) + damage
    if from_a_file:  # the path imap-fetch takes: os.read on a file descriptor, with idle
        with tempfile.TemporaryFile() as f:
            f.write(data)
            f.seek(0)
            got, error = read_all(f, idle=lambda: None)
    else:
        got, error = read_all(io.BytesIO(data))
    assert got[:len(valid)] == list(enumerate(valid, 1))
    if error is not None:
        assert str(error).startswith("line ")
        assert int(str(error).split()[1].rstrip(":")) > len(valid)
    for lineno, record in got:
        try:
            folder, uid = message_key(record, lineno)
        except DataError:
            continue
        assert isinstance(folder, str) and isinstance(uid, int) and uid > 0


@settings(max_examples=200, deadline=None)
@given(garbage)
def test_ndjson_reader_on_anything(data):
    read_all(io.BytesIO(data))


frames = st.lists(st.tuples(records.map(lambda r: {k: v for k, v in r.items()
                                                   if k != "length"}),
                            st.binary(max_size=40)), max_size=5)


def framed(pairs):
    """The message stream of pairs, and where each message's frame ends."""
    out, ends = io.BytesIO(), []
    for record, data in pairs:
        write_message(out, record, data)
        ends.append(out.tell())
    return out.getvalue(), ends


def read_frames(stream, first_line=None):
    got = []
    try:
        for record, data in read_messages(stream, first_line):
            got.append((record, data))
    except DataError:
        pass
    return got


@settings(max_examples=200, deadline=None)
@given(frames, st.data(), garbage)
def test_stream_reader_keeps_every_whole_message_before_the_damage(pairs, data, damage):
    whole, ends = framed(pairs)
    cut = data.draw(st.integers(0, len(whole)))
    damaged = whole[:cut] + damage
    intact = [(dict(record, length=len(body)), body)
              for (record, body), end in zip(pairs, ends, strict=True) if end <= cut]
    assert read_frames(io.BytesIO(damaged))[:len(intact)] == intact
    stdin = io.BytesIO(damaged)
    first = stdin.readline()  # as mbox-merge reads it, to tell a stream from an mbox
    if first:
        assert read_frames(stdin, first)[:len(intact)] == intact


@settings(max_examples=200, deadline=None)
@given(garbage)
def test_stream_reader_on_anything(data):
    read_frames(io.BytesIO(data))


@settings(max_examples=40, deadline=None)
@given(frames, st.data(), garbage)
def test_mbox_merge_stores_the_whole_messages_and_fails_only_as_documented(pairs, data,
                                                                           damage):
    whole, ends = framed([({"folder": "INBOX", "uid": uid}, body)
                          for uid, (_record, body) in enumerate(pairs, 1)])
    cut = data.draw(st.integers(0, len(whole)))
    intact = [to_lf(body) for (_record, body), end in zip(pairs, ends, strict=True)
              if end <= cut]
    with tempfile.TemporaryDirectory() as directory:
        target = os.path.join(directory, "INBOX.mbox")
        status = mbox_merge.main([target], io.BytesIO(whole[:cut] + damage), io.BytesIO())
        assert status in (errors.OK, errors.DATAERR)
        stored = [body for _offset, _record, body in scan(target)] \
            if os.path.exists(target) else []
    assert stored[:len(intact)] == intact
