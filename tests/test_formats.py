"""Round trips of arbitrary bytes through the mboxrd writer/reader and the stream framing."""

import io
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imapstream.errors import DataError
from imapstream.mbox.folders import file_stem, folder_name
from imapstream.mbox.mboxrd import format_message, parse_message
from imapstream.mbox.reader import TornTail, iter_messages
from imapstream.message import header_end, header_section, message_id, to_lf
from imapstream.stream import read_messages, write_message

# Lines that stress the format: mbox separators, quoted ones, our own and Dovecot's
# metadata headers, empty lines and CRs.
TRICKY_LINES = [b"From a@b Sat Jul  1 10:00:00 2005", b">From x", b">>From y", b"From ",
                b"Status: RO", b">Status: O", b"X-Status: F", b"X-Keywords: a b",
                b"X-Imapstream: uid=1", b"X-UID: 3", b"Content-Length: 0", b"", b"\r",
                b"Subject: x", b" folded", b"\xff\xfe\x80", b"Message-ID: <a@b>"]
messages = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(TRICKY_LINES), max_size=12).map(b"\n".join),
    st.lists(st.sampled_from(TRICKY_LINES), max_size=12).map(lambda ls: b"\n".join(ls) + b"\n"),
)
records = st.fixed_dictionaries({
    "folder": st.text(max_size=20),
    "delimiter": st.sampled_from(["/", ".", None]),
    "uidvalidity": st.integers(1, 2**32 - 1),
    "uid": st.integers(1, 2**32 - 1),
    "size": st.integers(0, 10**9),
    "flags": st.lists(st.sampled_from(["\\Seen", "\\Answered", "\\Flagged", "\\Draft",
                                       "\\Deleted", "$label1", "Junk"]), unique=True),
    "internaldate": st.sampled_from(["2005-07-01T12:00:00+02:00", "1999-12-31T23:59:59+00:00"]),
})


def _mbox(*pairs):
    return b"".join(format_message(to_lf(data), record) for record, data in pairs)


@settings(max_examples=400)
@given(st.lists(st.tuples(records, messages), max_size=5))
def test_mboxrd_round_trip_is_exact(pairs):
    found = list(iter_messages(io.BytesIO(_mbox(*pairs)), "test"))
    assert len(found) == len(pairs)
    for (record, data), (_offset, back, back_data) in zip(pairs, found, strict=True):
        assert back_data == to_lf(data)
        for key in ("folder", "uidvalidity", "uid", "size", "internaldate"):
            assert back[key] == record[key]
        assert sorted(back["flags"]) == sorted(record["flags"])
        assert back["message_id"] == message_id(header_section(to_lf(data)))


@given(records, messages)
def test_only_our_flag_headers_are_read_as_flags(record, data):
    # A message's own Status:/X-Status:/X-Keywords: lines never become flags.
    text = format_message(to_lf(data), dict(record, flags=[]))
    assert parse_message(text)[0]["flags"] == []


@given(st.lists(st.tuples(records, messages), min_size=1, max_size=3), st.data())
def test_a_torn_tail_is_detected_never_parsed(pairs, data):
    whole, last = _mbox(*pairs), len(_mbox(*pairs[:-1]))
    cut = data.draw(st.integers(last + len(b"From "), len(whole) - 1))
    found = []
    with pytest.raises(TornTail) as torn:
        for item in iter_messages(io.BytesIO(whole[:cut]), "test"):
            found.append(item)
    assert torn.value.offset == last
    assert len(found) == len(pairs) - 1


def test_a_message_that_begins_with_white_space_is_not_our_header_folded():
    # A record without size (imapstream(7): the message's CRLF length is written), and
    # a first line that looks like the continuation of the X-Keywords line before it.
    data = b" leading space\r\nSubject: x\r\n\r\nhi\r\n"
    text = format_message(to_lf(data), {"folder": "INBOX", "uid": 1})
    assert text.split(b"\n", 1)[1] == (b"X-Imapstream: folder=INBOX; uid=1; size=34; octets=30\n"
                                       b"Status: O\nX-Keywords:" + b" " * 32
                                       + b"\n leading space\nSubject: x\n\nhi\n\n")
    [(_offset, record, back)] = iter_messages(io.BytesIO(text), "test")
    assert back == to_lf(data) and record["size"] == 34 and record["flags"] == []


def test_foreign_mbox_flags_and_metadata_headers():
    foreign = (b"From a@b Sat Jul  1 10:00:00 2005\nSubject: x\nStatus: RO\nX-Status: AF\n"
               b"X-Keywords: $label1 work\nX-UID: 4\n\n>From body\n\n"
               b"From c@d Sun Jul  2 10:00:00 2005\nSubject: y\n\nno blank line after\n")
    (_, first, data1), (_, second, data2) = iter_messages(io.BytesIO(foreign), "test")
    assert data1 == b"Subject: x\n\nFrom body\n"
    assert first["flags"] == ["\\Seen", "\\Answered", "\\Flagged", "$label1", "work"]
    assert first["internaldate"] == "2005-07-01T10:00:00+00:00"
    assert data2 == b"Subject: y\n\nno blank line after\n" and second["flags"] == []


def test_a_foreign_x_gm_thrid_without_takeout_labels_is_the_messages_own():
    foreign = b"From a@b Sat Jul  1 10:00:00 2005\nX-GM-THRID: \nSubject: x\n\nbody\n"
    [(_offset, record, data)] = iter_messages(io.BytesIO(foreign), "test")
    assert data == b"X-GM-THRID: \nSubject: x\n\nbody\n" and "labels" not in record


def test_not_an_mbox():
    with pytest.raises(DataError, match="not an mbox file"):
        list(iter_messages(io.BytesIO(b"PK\x03\x04 zip"), "x.zip"))


@given(st.lists(st.tuples(st.fixed_dictionaries({}, optional={
    "folder": st.text(), "uid": st.integers(1, 2**32 - 1),
    "x": st.integers(-2**63, 2**63 - 1) | st.text()}), st.binary()), max_size=5))
def test_stream_framing_round_trip(pairs):
    out = io.BytesIO()
    for record, data in pairs:
        write_message(out, record, data)
    back = list(read_messages(io.BytesIO(out.getvalue())))
    assert back == [(dict(r, length=len(d)), d) for r, d in pairs]


@given(st.lists(st.binary(max_size=50), min_size=1, max_size=4), st.data())
def test_a_truncated_stream_yields_only_complete_messages(bodies, data):
    out, ends = io.BytesIO(), []
    for uid, body in enumerate(bodies, 1):
        write_message(out, {"folder": "INBOX", "uid": uid}, body)
        ends.append(out.tell())
    whole = out.getvalue()
    cut = data.draw(st.integers(1, len(whole) - 1).filter(lambda n: n not in ends))
    got = []
    with pytest.raises(DataError, match="truncated|JSON"):
        for _record, body in read_messages(io.BytesIO(whole[:cut])):
            got.append(body)
    assert got == bodies[:sum(end <= cut for end in ends)]


def test_message_id_rule():
    header = (b"Subject: x\nMessage-ID:\n  <folded@x>\n\t(comment)\n"
              b"Message-ID: <second@x>\n")
    assert message_id(header) == "<folded@x> (comment)"
    assert message_id(b"Subject: none\n") is None


HEADER_LINES = st.lists(st.sampled_from([
    b"Message-ID: <a@x>", b"message-id:<b@x>", b"MESSAGE-ID \t: <c@x>", b" <folded@x>",
    b"X-Original-Message-ID: <d@x>", b"Message-IDs: <e@x>", b"Subject: message-id: <f@x>",
    b"Message-ID:", b"\tmore", b"From: a@b", b""]), max_size=8)


@given(HEADER_LINES, st.sampled_from([b"\n", b"\r\n"]))
def test_message_id_is_the_first_match_of_the_rule(lines, newline):
    header = newline.join(lines) + newline
    match = re.search(rb"^message-id[ \t]*:(.*(?:\r?\n[ \t].*)*)", header, re.I | re.M)
    expected = b" ".join(match.group(1).split()).decode() or None if match else None
    assert message_id(header) == expected


@given(st.text(max_size=60), st.sampled_from(["/", "."]))
def test_folder_file_names_are_safe_and_reversible(folder, delimiter):
    name = file_stem(folder, delimiter) + ".mbox"
    assert "/" not in name and "\x00" not in name and len(name.encode()) <= 255
    assert os.path.dirname(os.path.normpath(os.path.join("backup", name))) == "backup"
    assert folder_name(name, delimiter) == folder


def test_long_folder_names_are_cut_with_a_digest():
    a, b = "x" * 1000, "x" * 999 + "y"
    assert len(file_stem(a, "/").encode()) <= 240
    assert file_stem(a, "/") != file_stem(b, "/")


@given(st.binary(max_size=40).map(lambda b: b.translate(bytes.maketrans(b"abcd", b"\r\n\r\n"))),
       st.data())
def test_header_end_is_one_byte_into_the_first_empty_line(data, draw):
    start = draw.draw(st.integers(0, len(data)))
    end = draw.draw(st.integers(start, len(data)))
    if data[start:start + 1] == b"\n" or data[start:start + 2] == b"\r\n":
        expected = start
    else:
        match = re.compile(rb"\r?\n\r?\n").search(data, start, end)
        expected = match.start() + 1 if match else end
    assert header_end(data, start, end) == expected
