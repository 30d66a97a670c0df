"""Folder names to file names and back.

A folder name is split at the server's hierarchy delimiter; each part is kept as UTF-8
except '%', '.', '/', '\\', control characters (C0, DEL, C1), lone surrogates and a
leading '~', which become %XX (percent-encoded UTF-8 bytes); an empty part becomes "%_";
the parts are joined with '.' and ".mbox" is appended: Personal/2005/Q3 (delimiter '/')
and Personal.2005.Q3 (delimiter '.') both become Personal.2005.Q3.mbox, as with the
original imapbackup, Entwürfe stays Entwürfe.mbox, and "a.b" under '/' becomes
a%2Eb.mbox.  A name over 240 bytes is cut and ends in "%~" plus 16 hex digits of the
folder's SHA-256; the full name is in every message's X-Imapstream header.

Why this is safe against any name a server sends: a file name never holds '/' or NUL,
never is '.' or '..', never starts with '.' (a hidden file, or one of the backup
directory's own files, such as a sidecar) and never passes 255 bytes, so joined to the
backup directory it names a file directly inside it.  Distinct names stay distinct:
every '.' in a file name is a delimiter, every '%' starts an escape, so the mapping is
reversed by folder_name (names it cut are told apart by their digest).  Names from a
server with one delimiter map one to one; a server that gives two folders different
delimiters ("a.b" under '.', "a/b" under '/') maps both to a.b.mbox, as the seed did.

Upper case is kept as it is, not encoded: encoding it would rename every ordinary file
(INBOX.mbox, Entwürfe.mbox).  On a file system that ignores case (macOS, Windows), two
folders whose names differ only in case would then meet in one file; archive.folder_path
sees when the file it finds is spelled otherwise and gives the second folder the name
with the digest (file_stem(..., distinct=True)) instead.  Names that differ only in
Unicode normalization (NFC, NFD) do share one file on macOS."""

import hashlib
import re

SUFFIXES = (".mbox", ".mbox.gz", ".mbox.bz2", ".mbox.xz")
COMPRESSION_SUFFIX = {"none": ".mbox", "gzip": ".mbox.gz", "bzip2": ".mbox.bz2", "xz": ".mbox.xz"}
EMPTY_PART = "%_"
_UNSAFE = re.compile("[%./\\\\\x00-\x1f\x7f-\x9f\ud800-\udfff]|^~")
_MAX_NAME = 240
_DIGEST_MARK = "%~"


def _encode_part(part):
    if not part:
        return EMPTY_PART
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in
                                         m.group().encode("utf-8", "surrogatepass")), part)


def file_stem(folder, delimiter, distinct=False):
    """The file name for a folder, without suffix; distinct=True always ends it in the
    digest, for a folder whose plain name another folder's file holds."""
    parts = folder.split(delimiter) if delimiter else [folder]
    stem = ".".join(_encode_part(p) for p in parts)
    if distinct or len(stem.encode()) > _MAX_NAME:
        digest = hashlib.sha256(folder.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        stem = stem.encode()[:_MAX_NAME - 20].decode("utf-8", "ignore") + _DIGEST_MARK + digest
    return stem


def folder_name(file_name, delimiter):
    """The folder a file name stands for (the inverse of file_stem for names it did
    not cut), or None if the name is not an mbox file name."""
    parts = folder_parts(file_name)
    return None if parts is None else (delimiter or ".").join(parts)


def folder_parts(file_name):
    """The parts of the folder name a file name stands for (split at the delimiter),
    or None if the name is not an mbox file name."""
    for suffix in SUFFIXES:
        if file_name.endswith(suffix):
            stem = file_name[: -len(suffix)]
            break
    else:
        return None
    return ["" if p == EMPTY_PART else re.sub(r"(%[0-9A-F]{2})+", _decode_run, p)
            for p in stem.split(".")]


def _decode_run(match):
    data = bytes.fromhex(match.group().replace("%", ""))
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")
