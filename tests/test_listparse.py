"""The fast LIST and STATUS reader gives what imapclient's parser gives, or leaves it
to it (returns None): the answer to LIST-STATUS of many folders."""

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st
from imapclient import IMAPClient
from imapclient.response_parser import parse_response

from imapstream.imap import listparse


def imapclient_folders(data):
    return IMAPClient._proc_folder_list(SimpleNamespace(folder_encode=False), data)


COMMON_LIST = [b'(\\HasNoChildren) "/" "Archive/2019/01"', b"(\\HasChildren \\Marked) \".\" INBOX",
               b'() "/" "Lists/dovecot"', b'(\\Noselect \\HasChildren) NIL "&AMk-t&AOk-"',
               b'(\\HasNoChildren \\Sent) "/" Sent', b'(\\HasNoChildren) "/" ""']
COMMON_STATUS = [b'"Archive/2019/01" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY 1796044142)',
                 b"INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 7 HIGHESTMODSEQ 1)",
                 b'"&AMk-t&AOk-" (MESSAGES 12 UIDNEXT 40 UIDVALIDITY 1)']


def test_the_common_shapes_are_read_fast_as_imapclient_reads_them():
    assert listparse.folders(COMMON_LIST) == imapclient_folders(COMMON_LIST)
    assert listparse.statuses(COMMON_STATUS) == parse_response(COMMON_STATUS)
    assert listparse.folders([]) == [] and listparse.statuses([]) == ()


def test_the_others_are_left_to_imapclient():
    """Escapes, a literal, NIL or digits where a name goes, an extended LIST, a
    leading zero: None, so the caller's general parser reads them."""
    for line in [b'() "/" "a\\"b"', b'() "\\\\" x', b"() \"/\" NIL", b'() "/" 2019',
                 b'() "/" "x" ("CHILDINFO" ("SUBSCRIBED"))', b"(\\HasNoChildren 12) \"/\" x"]:
        assert listparse.folders([line]) is None, line
    assert listparse.folders([(b'() "/" {3}', b"a b")]) is None
    for line in [b"2019 (MESSAGES 1)", b"x (MESSAGES 01)", b"NIL (MESSAGES 1)",
                 b'"a\\\\b" (MESSAGES 1)', b"x (MESSAGES 1 NIL 2)", b"x (MESSAGES)"]:
        assert listparse.statuses([line]) is None, line


PIECES = [b"\\", b'"', b"(", b")", b" ", b"NIL", b"0", b"12", b"x", b"Sent", b"/", b".",
          b"[", b"]", b"{3}", b"*", b"%", b"\xc3\xa9", b"MESSAGES", b"&AMk-"]
lines = st.lists(st.sampled_from(PIECES), max_size=14).map(b"".join)


@given(st.lists(lines, min_size=1, max_size=3))
def test_whatever_the_fast_reader_reads_it_reads_as_imapclient(data):
    for fast, slow in ((listparse.folders, imapclient_folders),
                       (listparse.statuses, parse_response)):
        found = fast(data)
        if found is None:
            continue
        assert found == slow(data)


@given(st.lists(st.tuples(
    st.lists(st.sampled_from([b"\\HasNoChildren", b"\\Marked", b"$Junk", b"\\Noselect"]),
             max_size=3, unique=True),
    st.sampled_from([b'"/"', b'"."', b"NIL"]),
    st.text("abcXYZ09&-_./ ", min_size=1, max_size=12).map(str.encode)), max_size=5))
def test_listings_of_plain_names_are_read_fast(entries):
    data = [b"(" + b" ".join(flags) + b") " + delimiter + b' "' + name + b'"'
            for flags, delimiter, name in entries]
    assert listparse.folders(data) == imapclient_folders(data)
