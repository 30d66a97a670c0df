"""Folder names to file names and back.

A folder name is split at the server's hierarchy delimiter; each part is kept as UTF-8
except '%', '.', '/', '\\', control characters and a leading '~', which become %XX
(percent-encoded UTF-8 bytes); the parts are joined with '.' and ".mbox" is appended:
Personal/2005/Q3 (delimiter '/') and Personal.2005.Q3 (delimiter '.') both become
Personal.2005.Q3.mbox, as with the original imapbackup, and "a.b" under '/' becomes
a%2Eb.mbox.  No file name can hold '/', be '.' or '..', or leave the directory.  A name
over 240 bytes is cut and ends in "%~" plus 16 hex digits of the folder's SHA-256;
the full name is in every message's X-Imapstream header."""

import hashlib
import re

SUFFIXES = (".mbox", ".mbox.gz", ".mbox.bz2", ".mbox.xz")
COMPRESSION_SUFFIX = {"none": ".mbox", "gzip": ".mbox.gz", "bzip2": ".mbox.bz2", "xz": ".mbox.xz"}
_UNSAFE = re.compile(r"[%./\\\x00-\x1f\x7f]|^~")
_MAX_NAME = 240


def _encode_part(part):
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), part)


def file_stem(folder, delimiter):
    parts = folder.split(delimiter) if delimiter else [folder]
    stem = ".".join(_encode_part(p) for p in parts)
    if len(stem.encode()) > _MAX_NAME:
        digest = hashlib.sha256(folder.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        stem = stem.encode()[:_MAX_NAME - 20].decode("utf-8", "ignore") + "%~" + digest
    return stem


def folder_name(file_name, delimiter):
    """The folder a file name stands for (the inverse of file_stem for names it did
    not cut), or None if the name is not an mbox file name."""
    for suffix in SUFFIXES:
        if file_name.endswith(suffix):
            stem = file_name[: -len(suffix)]
            break
    else:
        return None
    parts = [re.sub(r"(%[0-9A-F]{2})+", _decode_run, p) for p in stem.split(".")]
    return (delimiter or ".").join(parts)


def _decode_run(match):
    return bytes.fromhex(match.group().replace("%", "")).decode("utf-8", "replace")
