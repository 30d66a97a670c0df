"""Fuzzing the readers of the two streams with hypothesis: NDJSON records (read_records,
parse_record, message_key) and the message stream framing (read_messages, and mbox-merge
reading it).  Whatever follows a valid prefix, a reader yields every record or message
of the prefix, then stops or raises a DataError: never another exception."""

import contextlib
import datetime as dt
import io
import os
import re
import tempfile

import orjson
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plumbing import run

from imapstream import errors
from imapstream.commands import imap_fetch, imap_list, mbox_ids, mbox_merge
from imapstream.errors import DataError
from imapstream.mbox.archive import mbox_files
from imapstream.mbox.reader import scan
from imapstream.message import to_lf
from imapstream.records import FIELDS, message_key, read_records
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
# Records as message records look, and as anything else might send them (keys of its
# own, any values); the known keys with values of their types.
numbers = st.integers(1, 2**32 - 1)
records = st.one_of(
    st.dictionaries(st.text(max_size=8).filter(lambda key: key not in FIELDS), values,
                    max_size=5),
    st.fixed_dictionaries({"folder": st.text(max_size=10), "uid": numbers},
                          optional={"uidvalidity": st.none() | numbers,
                                    "delimiter": st.none() | st.text(max_size=2)}),
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


# Wrong types, from the types imapstream(7) gives each key (the man page's words, not
# records.FIELDS, so that a check too lax fails here).
TEXT = "string"  # a string
COUNT = "count"  # an integer from 0
NUMBER = "number"  # an IMAP nz-number: an integer from 1 to 2^32-1
MODSEQ = "modseq"  # a mod-sequence (RFC 7162): an integer from 1 to 2^63-1
TYPES = {"folder": TEXT, "delimiter": TEXT, "flags": "flags", "special_use": TEXT,
         "noselect": "boolean", "messages": COUNT, "uidvalidity": NUMBER, "uidnext": NUMBER,
         "uid": NUMBER, "message_id": TEXT, "size": COUNT, "internaldate": "date",
         "since": NUMBER, "checkpoint": "boolean", "failed": "boolean", "file": TEXT,
         "offset": COUNT, "length": COUNT, "not_held_in": TEXT, "modseq": MODSEQ,
         "highestmodseq": MODSEQ, "update": "update", "missing_since": "date",
         "gm_msgid": "digits", "gm_thrid": "digits", "labels": "labels", "copy_of": "digits"}
not_json_types = st.one_of(st.floats(allow_nan=False, allow_infinity=False),
                           st.lists(scalars, max_size=2),
                           st.dictionaries(st.text(max_size=3), scalars, max_size=2))
integers = st.integers(-2**63, 2**64 - 1)


def _iso(text):
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


WRONG = {
    TEXT: st.one_of(st.booleans(), integers, not_json_types),
    COUNT: st.one_of(st.booleans(), st.integers(-2**63, -1), st.text(max_size=4),
                     st.sampled_from([1.0, 1e14, 0.5, "12"]), not_json_types),
    NUMBER: st.one_of(st.booleans(), st.integers(-2**63, 0), st.integers(2**32, 2**64 - 1),
                      st.text(max_size=4), st.sampled_from([1.0, 1e14, "7"]), not_json_types),
    "flags": st.one_of(st.text(max_size=4), integers, st.booleans(),
                       st.lists(st.one_of(integers, st.booleans(), st.lists(scalars)),
                                min_size=1, max_size=2),
                       st.sampled_from([[""], ["a b"], ["x\n"], ["\r"], ["\x00"],
                                        ["\\Seen", "\t"]]),
                       st.dictionaries(st.text(max_size=3), scalars, max_size=1)),
    MODSEQ: st.one_of(st.booleans(), st.integers(-2**63, 0), st.integers(2**63, 2**64 - 1),
                      st.text(max_size=4), st.sampled_from([1.0, "7"]), not_json_types),
    "update": st.one_of(integers, st.booleans(), not_json_types,
                        st.text(max_size=8).filter(lambda t: t not in ("flags", "vanished"))),
    "boolean": st.one_of(integers, st.text(max_size=4), not_json_types),
    "digits": st.one_of(integers, st.booleans(), not_json_types,
                        st.sampled_from(["", "12a", " 1", "-1", "1.5", "\u0661\u0662"])),
    "labels": st.one_of(st.text(max_size=4), integers, st.booleans(),
                        st.lists(st.one_of(integers, st.booleans(), st.lists(scalars)),
                                 min_size=1, max_size=2),
                        st.sampled_from([[""], ["a\nb"], ["\r"], ["\x00"], ["ok", "\x1f"]]),
                        st.dictionaries(st.text(max_size=3), scalars, max_size=1)),
    "date": st.one_of(integers, st.booleans(), not_json_types,
                      st.text(max_size=12).filter(lambda t: not _iso(t)),
                      st.sampled_from(["2021-02-29T00:00:00+00:00", "29-Feb-2021",
                                       "0001-01-01T00:00:00+01:00",
                                       "9999-12-31T23:59:59-23:59", "2005-07-01 x"])),
}
ZONES = [dt.UTC, dt.timezone(dt.timedelta(hours=14)),
         dt.timezone(-dt.timedelta(hours=12, minutes=30))]
flag = st.text(st.characters(blacklist_categories=("Cs",),
                             blacklist_characters=[chr(c) for c in range(33)] + ["\x7f"]),
               min_size=1, max_size=6)
# A Gmail label: no control character, none of the names Takeout gives a system label
# or a state (read back as those), no category.
label = st.text(st.characters(blacklist_categories=("Cs",),
                              blacklist_characters=[chr(c) for c in range(32)] + ["\x7f"]),
                min_size=1, max_size=6).filter(
    lambda t: t.lower() not in {"inbox", "sent", "draft", "drafts", "important", "starred",
                                "spam", "trash", "archived", "opened", "unread"}
    and not t.startswith("Category "))
dates = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1),
                     timezones=st.none() | st.sampled_from(ZONES)).map(dt.datetime.isoformat)
message_fields = {"folder": st.text(max_size=8), "delimiter": st.none() | st.text(max_size=2),
                  "uidvalidity": numbers, "uid": numbers,
                  "message_id": st.none() | st.text(max_size=8),
                  "size": st.integers(0, 2**40), "flags": st.lists(flag, max_size=3),
                  "internaldate": st.none() | dates,
                  "not_held_in": st.none() | st.text(max_size=4),
                  "gm_msgid": st.none() | st.from_regex(r"[0-9]{1,20}", fullmatch=True),
                  "gm_thrid": st.none() | st.from_regex(r"[0-9]{1,20}", fullmatch=True),
                  "labels": st.none() | st.lists(label, max_size=3, unique=True)}
KINDS = {
    "folder record": {"folder": st.text(max_size=8),
                      "delimiter": st.none() | st.text(max_size=2),
                      "flags": st.lists(flag, max_size=2),
                      "special_use": st.none() | st.text(max_size=6),
                      "noselect": st.booleans(), "messages": st.none() | st.integers(0, 99),
                      "uidvalidity": st.none() | numbers, "uidnext": st.none() | numbers},
    "message record": message_fields,
    "folder checkpoint": {"folder": st.text(max_size=8),
                          "delimiter": st.none() | st.text(max_size=2),
                          "uidvalidity": numbers, "uidnext": numbers,
                          "messages": st.integers(0, 99), "since": st.none() | numbers,
                          "checkpoint": st.booleans()},
    "held record": dict(message_fields, file=st.text(max_size=8),
                        offset=st.integers(0, 2**40)),
}
# Which commands read each kind of record.
READERS = {
    "folder record": ["imap-list -", "imap-list --since"],
    "message record": ["mbox-ids --missing", "imap-fetch", "mbox-merge"],
    "folder checkpoint": ["mbox-ids --missing", "imap-fetch", "mbox-merge",
                          "imap-list --since"],
    "held record": ["mbox-ids --missing", "imap-list --since"],
}


def test_every_documented_key_has_a_type():
    """The keys the record sections of imapstream(7) describe, and the message stream's
    length, are those TYPES and records.FIELDS know."""
    page = (REPO / "man" / "imapstream.7").read_text()
    keys = set()
    for section in re.findall(r"\.Ss (?:Folder record|Message record|Folder checkpoint|"
                              r"Held record|Update record) \(STABLE\)\n(.*?)(?=\n\.Ss )",
                              page, re.S):
        for line in re.findall(r"^\.It Cm (.*)$", section, re.M):
            keys.update(key.strip() for key in line.split(","))
    assert "\n.Cm length :\n" in page
    assert keys | {"length"} == set(TYPES) == set(FIELDS)


def command_run(reader, lines, directory):
    """(status, stdout, stderr) of reader given lines of records."""
    stdin = b"".join(lines)
    err = io.StringIO()
    server = ["--server", "127.0.0.1:1", "--user", "u"]  # never reached: input comes first
    with contextlib.redirect_stderr(err):
        if reader == "mbox-ids --missing":
            status, out = run(mbox_ids, ["--missing", "-d", directory], stdin)
        elif reader == "imap-fetch":  # a session opened at the first good record
            status, out = run(imap_fetch, server, stdin)
        elif reader == "mbox-merge":
            status, out = run(mbox_merge, ["-d", directory], stdin)
        elif reader == "imap-list -":
            status, out = run(imap_list, [*server, "-"], stdin)
        else:
            since = os.path.join(directory, "since.ndjson")
            with open(since, "wb") as f:
                f.write(stdin)
            status, out = run(imap_list, [*server, "--since", since, "--all"])
    return status, out, err.getvalue()


GOOD = {"folder": "INBOX", "delimiter": "/", "uidvalidity": 7, "uid": 1}
BODY = b"Subject: good\r\n\r\nbody\r\n"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_key_of_a_wrong_type_is_one_line_and_exit_65(data):
    """Every key of every kind of record, given a value of another type, to each
    command that reads that kind: exit 65 with one line naming the key, never an
    internal error, and mbox-merge keeps the whole message before it."""
    kind = data.draw(st.sampled_from(sorted(KINDS)), label="kind")
    record = data.draw(st.fixed_dictionaries(KINDS[kind]), label="valid record")
    key = data.draw(st.sampled_from(sorted(KINDS[kind])), label="key")
    record[key] = data.draw(WRONG[TYPES[key]], label="wrong value")
    reader = data.draw(st.sampled_from(READERS[kind]), label="reader")
    line = orjson.dumps(record) + b"\n"
    with tempfile.TemporaryDirectory() as directory:
        if reader == "mbox-merge":  # a whole message first, then the bad record's frame
            good, _ = framed([(GOOD, BODY)])
            bad = orjson.dumps(dict(record, length=len(BODY))) + b"\n" + BODY + b"\n" \
                if kind == "message record" else line
            status, _out, err = command_run(reader, [good, bad], directory)
            held = [body for _o, _r, body in scan(os.path.join(directory, "INBOX.mbox"))]
            assert held == [to_lf(BODY)]
        else:
            status, _out, err = command_run(reader, [line], directory)
    prog = reader.split()[0]
    err = "".join(line for line in err.splitlines(True) if not line.startswith("APPEND: "))
    assert status == errors.DATAERR, err
    assert err.count("\n") == 1 and err.startswith(f"{prog}: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert f'"{key}" must be ' in err, err


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.fixed_dictionaries(message_fields), st.binary(max_size=60)),
                min_size=1, max_size=4), st.booleans())
def test_what_mbox_merge_accepts_it_reads_back(pairs, into_directory):
    """Any record of the right types is written so that it reads back: the message
    byte for byte with its folder, UIDs and size.  (One UIDVALIDITY per folder, as a
    listing has: a second one with the same bytes is the same message renumbered.)"""
    generation = {}
    pairs = [(dict(record, uid=uid, uidvalidity=generation.setdefault(
        record["folder"], record["uidvalidity"])), body)
        for uid, (record, body) in enumerate(pairs, 1)]
    stream, _ = framed(pairs)
    with tempfile.TemporaryDirectory() as directory:
        target = ["-d", directory] if into_directory else [os.path.join(directory, "x.mbox")]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            status = mbox_merge.main(target, io.BytesIO(stream), io.BytesIO())
        assert status == errors.OK, err.getvalue()
        held = []
        for path in mbox_files(directory):
            held += [(record["folder"], record["uid"], record["size"], body,
                      record.get("labels"), record.get("gm_msgid"))
                     for _o, record, body in scan(path)]
    want = [(record["folder"], record["uid"], record["size"], to_lf(body),
             record.get("labels"), record.get("gm_msgid")) for record, body in pairs]
    assert sorted(held) == sorted(want)
