"""The sidecar index (.NAME.mbox.ids) and the fast readers behind it: whatever state the
sidecar is in (missing, stale, corrupt, of another file), what a file holds is what a
full scan of the file says."""

import gzip
import hashlib
import io
import json
import os
import re
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imapstream.commands import mbox_ids, mbox_merge
from imapstream.errors import DataError
from imapstream.mbox import heldrecord, sidecar
from imapstream.mbox.archive import mbox_files
from imapstream.mbox.compression import reading
from imapstream.mbox.mboxrd import format_message, parse_held, quote_from, unquote_from
from imapstream.mbox.reader import Holdings, iter_messages, scan
from imapstream.mbox.scan import spans
from imapstream.mbox.uidranges import Held
from imapstream.message import header_section, message_id
from imapstream.stream import write_message

AWKWARD = [
    b"Subject: plain\nMessage-ID: <a@x>\n\nbody\n",
    b"Subject: no id\n\nFrom here\n>From there\n>>From everywhere\nFrom \n",
    b"From someone Sat Jul  1 10:00:00 2005\nSubject: first line is From\n\nb\n",
    b"Subject: own status\nStatus: RO\n>X-Status: F\nMessage-ID:\n <folded@x>\n\nb\n",
    b"Subject: no trailing newline\n\nlast line",
    b"Subject: headers only\nMessage-ID: <h@x>\n",
    b"",
]


def stream(messages, uidvalidity=7, folder="INBOX", first=1):
    out = io.BytesIO()
    for uid, data in enumerate(messages, first):
        write_message(out, {"folder": folder, "delimiter": "/", "uidvalidity": uidvalidity,
                            "uid": uid, "size": len(data), "flags": ["\\Seen"],
                            "internaldate": "2005-07-01T12:00:00+02:00"}, data)
    return out.getvalue()


def merge(path, messages, **kw):
    status = mbox_merge.main([str(path)], io.BytesIO(stream(messages, **kw)), io.BytesIO())
    assert status == 0


def full_scan(path):
    return [(offset, {k: record.get(k) for k in sidecar.KEYS})
            for offset, record, _data in scan(str(path))]


def held(path):
    return list(Holdings(str(path)).records())


def index_path(path):
    return sidecar.path_for(str(path))


@pytest.fixture
def mbox(tmp_path):
    path = tmp_path / "INBOX.mbox"
    merge(path, AWKWARD)
    return path


def test_merge_writes_a_private_hidden_sidecar_that_matches_a_full_scan(mbox):
    assert os.path.basename(index_path(mbox)) == ".INBOX.mbox.ids"
    assert os.stat(index_path(mbox)).st_mode & 0o777 == 0o600
    assert sidecar.load(str(mbox)) is not None
    assert held(mbox) == full_scan(mbox) and len(held(mbox)) == len(AWKWARD)
    assert mbox_files(str(mbox.parent)) == [str(mbox)]


def test_a_sidecar_alone_answers_a_rerun(mbox, monkeypatch):
    def no_scan(*_args, **_kw):
        raise AssertionError("the mbox was read")
    monkeypatch.setattr("imapstream.mbox.reader.HeldScan", no_scan)
    assert len(held(mbox)) == len(AWKWARD)


def test_a_missing_sidecar_is_rebuilt_by_the_next_merge(mbox):
    os.unlink(index_path(mbox))
    assert held(mbox) == full_scan(mbox)
    assert not os.path.exists(index_path(mbox))  # readers never write one
    merge(mbox, [b"Subject: new\n\nx\n"], uidvalidity=8)
    assert sidecar.load(str(mbox)) is not None and held(mbox) == full_scan(mbox)


@pytest.mark.parametrize("damage", [
    lambda b: b"", lambda b: b[:len(b) // 2], lambda b: b"garbage\n" + b,
    lambda b: b.replace(b'"uid":', b'"uid" :', 1) if b'"uid":' in b else b + b"x",
    lambda b: re.sub(rb'\[(\d+),', lambda m: b"[%d," % (int(m.group(1)) + 1), b, count=2),
    lambda b: b.replace(b'"imapstream-ids":2', b'"imapstream-ids":3'),
    lambda b: b.replace(b'"held":[["INBOX",7,1,', b'"held":[["INBOX",7,2,'),
])
def test_a_corrupt_sidecar_is_ignored(mbox, damage):
    before = full_scan(mbox)
    with open(index_path(mbox), "rb") as f:
        text = f.read()
    with open(index_path(mbox), "wb") as f:
        f.write(damage(text))
    assert held(mbox) == before


def test_an_append_adds_a_segment_and_reads_no_rows(mbox, monkeypatch):
    before = open(index_path(mbox), "rb").read()
    size = mbox.stat().st_size

    def no_rows(_base):
        raise AssertionError("the sidecar's rows were read")
    monkeypatch.setattr(sidecar, "_load_rows", no_rows)
    records = io.BytesIO()
    new = b'{"folder":"INBOX","delimiter":"/","uidvalidity":7,"uid":8,"size":5}\n'
    assert mbox_ids.main(["--missing", str(mbox)], io.BytesIO(new), records) == 0
    assert records.getvalue() == new
    merge(mbox, [b"Subject: new\n\nx\n"], first=8)  # UIDs 1-7 are held
    monkeypatch.undo()
    after = open(index_path(mbox), "rb").read()
    assert after.startswith(before)
    rows, state = after[len(before):].split(b"\n")[:2]
    assert after.endswith(state + b"\n") and after.count(b"\n") == 4
    assert rows == b'[[%d,"INBOX","/",7,8,null,16,["\\\\Seen"],"2005-07-01T12:00:00+02:00"]]' % size
    fields = json.loads(state)
    assert (fields["count"], fields["at"], fields["held"]) == (
        len(AWKWARD) + 1, len(before), [["INBOX", 7, 1, 8]])
    assert fields["sha1"] == hashlib.sha1(rows).hexdigest()
    assert held(mbox) == full_scan(mbox) and len(sidecar.load(str(mbox)).rows) == len(AWKWARD) + 1


def test_a_torn_append_is_passed_over_and_cut_off_by_the_next(mbox):
    before = open(index_path(mbox), "rb").read()
    merge(mbox, [b"Subject: new\n\nx\n"], uidvalidity=8)
    after = open(index_path(mbox), "rb").read()
    expected = full_scan(mbox)
    rows_end = after.index(b"\n", len(before)) + 1
    cuts = {*range(len(before), len(after), 11), rows_end - 1, rows_end, rows_end + 1,
            len(after) - 1}
    for cut in sorted(cuts):
        with open(index_path(mbox), "wb") as f:
            f.write(after[:cut])
        index = sidecar.load(str(mbox))
        assert index.count == len(AWKWARD) and len(index.rows) == len(AWKWARD), cut
        assert held(mbox) == expected, cut
    merge(mbox, [b"Subject: newer\n\ny\n"], uidvalidity=9)
    text = open(index_path(mbox), "rb").read()
    assert text.startswith(before) and text.count(b"\n") == 4  # the torn part cut off
    assert held(mbox) == full_scan(mbox) and len(sidecar.load(str(mbox)).rows) == len(AWKWARD) + 2


def test_rows_of_a_damaged_segment_are_scanned_again(mbox):
    merge(mbox, [b"Subject: new\n\nx\n"], uidvalidity=8)
    text = open(index_path(mbox), "rb").read()
    with open(index_path(mbox), "wb") as f:
        f.write(text.replace(b'"Subject', b'"Subjekt', 1).replace(b',7,1,', b',7,2,', 1))
    index = sidecar.load(str(mbox))
    assert index is not None and sidecar._load_rows(index.base) is None
    assert held(mbox) == full_scan(mbox)


def test_superseded_states_are_compacted(mbox, monkeypatch):
    state = open(index_path(mbox), "rb").read().split(b"\n")[1]
    monkeypatch.setattr(sidecar, "SLACK", -len(state) // 2)  # one superseded state, not two
    merge(mbox, [b"Subject: one\n\nx\n"], uidvalidity=8)  # appended: nothing superseded yet
    assert open(index_path(mbox), "rb").read().count(b"\n") == 4
    merge(mbox, [b"Subject: two\n\ny\n"], uidvalidity=9)  # one state superseded: rewritten
    text = open(index_path(mbox), "rb").read()
    assert text.count(b"\n") == 2 and json.loads(text.split(b"\n")[1])["at"] == 0
    assert held(mbox) == full_scan(mbox)


def test_a_version_1_sidecar_is_ignored_and_replaced(mbox):
    rows = full_scan(mbox)
    old = json.dumps({"imapstream-ids": 1, "count": len(rows)}).encode() + b"\n[]"
    with open(index_path(mbox), "wb") as f:
        f.write(old)
    assert sidecar.load(str(mbox)) is None and held(mbox) == rows
    merge(mbox, [b"Subject: new\n\nx\n"], uidvalidity=8)
    assert json.loads(open(index_path(mbox), "rb").read().split(b"\n")[1])["imapstream-ids"] == 2


def test_held_uids_are_ranges_per_generation():
    held_uids = Held()
    for uid in (5, 1, 2, 3, 9, 7, 6, 3):
        held_uids.add({"folder": "F", "uidvalidity": 7, "uid": uid})
    held_uids.add({"folder": "G", "uidvalidity": 1, "uid": None})
    held_uids.add({"folder": None, "uidvalidity": None, "uid": None})
    assert held_uids.to_json() == [["F", 7, 1, 3, 5, 7, 9, 9], ["G", 1], [None, None]]
    again = Held.from_json(held_uids.to_json())
    assert [(("F", 7), uid) in again for uid in range(11)] == [
        False, True, True, True, False, True, True, True, False, True, False]
    for bad in ([["F", 7, 3, 1]], [["F", 7, 1, 3, 3, 4]], [["F", 7, 1]], [["F", 0, 1, 1]],
                [[None, None, 1, 1]], [["F", 7, 0, 1]]):
        with pytest.raises(ValueError):
            Held.from_json(bad)


def test_a_file_that_grew_behind_the_sidecar_scans_only_its_tail(mbox, tmp_path):
    other = tmp_path / "other.mbox"
    merge(other, [b"Subject: appended elsewhere\n\ny\n"], uidvalidity=9)
    stale = open(index_path(mbox), "rb").read()
    with open(mbox, "ab") as f:
        f.write(other.read_bytes())
    assert open(index_path(mbox), "rb").read() == stale
    assert held(mbox) == full_scan(mbox) and len(held(mbox)) == len(AWKWARD) + 1


@pytest.mark.parametrize("change", ["replaced", "rewritten", "shrunk"])
def test_a_sidecar_of_other_bytes_is_not_trusted(mbox, tmp_path, change):
    copy = tmp_path / "copy"
    shutil.copy(mbox, copy)
    text = mbox.read_bytes()
    if change == "replaced":  # another file of the same size and content but one flag
        os.replace(copy, mbox)
        mbox.write_bytes(text.replace(b"Status: RO", b"Status: O ", 1))
    elif change == "rewritten":  # in place, same size, another mtime
        with open(mbox, "r+b") as f:
            f.write(text.replace(b"Status: RO", b"Status: O ", 1))
        os.utime(mbox, ns=(1, 1))
    else:
        with open(mbox, "r+b") as f:
            f.truncate(len(text) // 2)
    try:
        expected = full_scan(mbox)
    except DataError:  # the shrunk file has a torn tail
        expected = None
    holdings = Holdings(str(mbox))
    if expected is not None:
        assert list(holdings.records()) == expected
        assert any("\\Seen" not in r["flags"] for _o, r in holdings.records())
    else:
        assert holdings.torn_at is not None and len(list(holdings.records())) < len(AWKWARD)


def test_a_torn_tail_is_cut_and_the_sidecar_follows(mbox):
    whole = mbox.read_bytes()
    with open(mbox, "ab") as f:
        f.write(format_message(b"Subject: torn\n\n" + b"z" * 100, {"uidvalidity": 7,
                                                                   "uid": 99})[:-40])
    holdings = Holdings(str(mbox))
    assert holdings.torn_at == len(whole)
    merge(mbox, [b"Subject: after the crash\n\nok\n"], uidvalidity=8)
    assert held(mbox) == full_scan(mbox) and len(held(mbox)) == len(AWKWARD) + 1


def test_gzip_files_get_a_sidecar_too(tmp_path):
    path = tmp_path / "INBOX.mbox.gz"
    merge(path, AWKWARD[:3])
    merge(path, AWKWARD[3:], uidvalidity=8)  # a second member
    assert sidecar.load(str(path)).raw_end == path.stat().st_size
    assert held(path) == full_scan(path) and len(held(path)) == len(AWKWARD)
    os.unlink(index_path(path))
    assert held(path) == full_scan(path)


def test_gzip_members_read_like_gzip_and_a_cut_member_is_reported(tmp_path):
    data = gzip.compress(b"From a\n\none\n") + b"\0\0" + gzip.compress(b"From b\n\ntwo\n")
    reader = reading(io.BytesIO(data), ".gz")
    assert b"".join(iter(lambda: reader.read(5), b"")) == b"From a\n\none\nFrom b\n\ntwo\n"
    with pytest.raises(DataError, match="last compressed stream is cut short"):
        list(spans(reading(io.BytesIO(data[:-7]), ".gz"), "cut.gz"))


def test_mbox_ids_lists_the_same_with_and_without_a_sidecar(mbox):
    with_index = io.BytesIO()
    assert mbox_ids.main([str(mbox)], io.BytesIO(), with_index) == 0
    os.unlink(index_path(mbox))
    without = io.BytesIO()
    assert mbox_ids.main([str(mbox)], io.BytesIO(), without) == 0
    assert with_index.getvalue() == without.getvalue()
    assert without.getvalue().count(b"\n") == len(AWKWARD)


def test_messages_spanning_many_blocks(tmp_path):
    big = b"Subject: big\n\n" + (b"0123456789abcdef" * 4 + b"\n") * (300_000)
    path = tmp_path / "big.mbox"
    merge(path, [AWKWARD[0], big, AWKWARD[1]])
    assert [data for _o, _r, data in scan(str(path))] == [AWKWARD[0], big, AWKWARD[1]]
    os.unlink(index_path(path))
    assert held(path) == full_scan(path)


lines = st.lists(st.sampled_from([b"From x", b">From y", b">>From ", b"From", b"a From b",
                                  b"Status: RO", b">x-status: F", b"Message-ID: <m@x>", b"",
                                  b" folded", b"\r", b"x" * 70]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(lines, lines, st.booleans())
def test_the_fast_paths_equal_the_regular_ones(head, body, newline_at_end):
    data = b"\n".join(head) + b"\n\n" + b"\n".join(body) + (b"\n" if newline_at_end else b"")
    assert quote_from(data) == re.sub(rb"(?m)^(>*From )", rb">\1", data)
    assert unquote_from(data) == re.sub(rb"(?m)^>(>*From )", rb"\1", data)
    record = {"folder": "F", "uidvalidity": 3, "uid": 5, "size": 10, "flags": ["\\Seen"]}
    text = format_message(data, record)
    [(_offset, full, stored)] = list(iter_messages(io.BytesIO(text), "t"))
    assert stored == data
    assert parse_held(text, 0, len(text)) == dict(full, message_id=message_id(
        header_section(data)))
    for cut in (len(text) - 1, len(text) // 2):
        torn = text[:cut]
        with pytest.raises(DataError):
            list(iter_messages(io.BytesIO(torn), "t"))
        with pytest.raises(ValueError):
            parse_held(torn, 0, len(torn))


def test_a_file_rewritten_in_place_between_the_hashed_windows_is_read_again(tmp_path):
    """Same size, another mtime, a change the first and last 4 KiB do not show."""
    path = tmp_path / "INBOX.mbox"
    merge(path, [b"Subject: %d\n\n" % n + b"x" * 500 + b"\n" for n in range(40)])
    text = path.read_bytes()
    middle = text.index(b"Status: RO", len(text) // 2)
    assert sidecar.WINDOW < middle < len(text) - sidecar.WINDOW
    with open(path, "r+b") as f:
        f.seek(middle)
        f.write(b"Status: O ")
    os.utime(path, ns=(1, 1))
    assert held(path) == full_scan(path)
    assert sum("\\Seen" not in r["flags"] for _o, r in held(path)) == 1


def test_the_held_record_below_a_uid_is_read_from_the_last_segments_only(mbox):
    merge(mbox, [b"Subject: eight\nMessage-ID: <8@x>\n\nx\n"], first=8)
    merge(mbox, [b"Subject: twelve\n\nx\n"], first=12)
    path = index_path(mbox)
    first_rows = open(path, "rb").read().split(b"\n")[0]
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 7, 13)["uid"] == 12
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 7, 12)["message_id"] == "<8@x>"
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 7, 8)["uid"] == 7
    assert heldrecord.held_record(str(mbox), "INBOX", ".", 7, 13)["uid"] == 12  # by key
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 7, 1) is None
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 8, 13) is None
    assert heldrecord.held_record(str(mbox), "Sent", "/", 7, 13) is None
    # The first segment's rows, damaged, are read only for a UID they alone hold.
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data.replace(first_rows, first_rows.replace(b"INBOX", b"INBOY"), 1))
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 7, 13)["uid"] == 12
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 7, 12)["uid"] == 8
    assert heldrecord.held_record(str(mbox), "INBOX", "/", 7, 8) is None
