"""The fast FETCH reader gives what imapclient's parser gives, or leaves it to it."""

from hypothesis import given
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response

from imapstream.imap.fetchparse import parse_simple

flags = st.lists(st.sampled_from([b"\\Seen", b"\\Flagged", b"$label1", b"Junk", b"\\Recent"]),
                 unique=True, max_size=4)
dates = st.sampled_from([b"01-Jul-2005 12:00:00 +0200", b" 2-Jan-1999 23:59:59 -0000"])
literals = st.binary(max_size=40)
sections = st.sampled_from([b"BODY[]", b"BODY[HEADER.FIELDS (MESSAGE-ID)]", b"BODY[TEXT]"])


@st.composite
def responses(draw):
    items = []
    for name in draw(st.permutations(["UID", "RFC822.SIZE", "FLAGS", "INTERNALDATE"])):
        if draw(st.booleans()):
            continue
        if name == "FLAGS":
            items.append(b"FLAGS (" + b" ".join(draw(flags)) + b")")
        elif name == "INTERNALDATE":
            items.append(b'INTERNALDATE "' + draw(dates) + b'"')
        else:
            items.append(name.encode() + b" %d" % draw(st.integers(0, 2**32)))
    head = b"%d (" % draw(st.integers(1, 10**6)) + b" ".join(items)
    if items and draw(st.booleans()):  # a literal alone is left to imapclient (below)
        literal = draw(literals)
        section = (b" " if items else b"") + draw(sections)
        return [(head + section + b" {%d}" % len(literal), literal), b")"]
    return [head + b")"]


@given(responses())
def test_the_fast_reader_equals_imapclient(response):
    """Every response of the common shape is read by the fast reader, as imapclient
    reads it."""
    assert parse_simple(response) == parse_fetch_response(response, False, False)


def test_modseq_is_read_as_imapclient_reads_it():
    """RFC 7162: a listing of a server with CONDSTORE carries MODSEQ (n) per message."""
    response = [b"4 (UID 8 FLAGS (\\Seen) MODSEQ (12345678901234))"]
    assert parse_simple(response) == parse_fetch_response(response, False, False) == {
        4: {b"UID": 8, b"FLAGS": (b"\\Seen",), b"MODSEQ": (12345678901234,), b"SEQ": 4}}


def test_unusual_responses_are_left_to_imapclient():
    assert parse_simple([b"4 (UID 8 MODSEQ (12 13))"]) is None
    assert parse_simple([(b"4 (UID 8 BODY[] {5}", b"abc"), b")"]) is None
    assert parse_simple([(b"4 (BODY[] {1}", b"a"), b" FLAGS (\\Seen))"]) is None
    assert parse_simple([(b"4 (BODY[] {1}", b"a"), b")"]) is None
