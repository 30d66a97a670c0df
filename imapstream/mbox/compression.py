"""The compressed forms of an mbox file, known here and nowhere else: gzip (read with
ISA-L's igzip, at about three times the standard library's speed; members one after
another, zero padding between them, a member cut short an EOFError), bzip2 and xz,
told by a file's suffix or a stream's magic number.  Each library is imported only
when a file needs it: loading liblzma alone costs 20 ms of start-up."""

import importlib
import os

# suffix: (magic number, the module and class that read it, the module and class that
# append a member or stream to it, the module and factory of a one-stream decompressor)
FORMATS = {
    ".gz": (b"\x1f\x8b", "isal.igzip", "IGzipFile", "gzip", "GzipFile",
            "isal.isal_zlib", "decompressobj"),
    ".bz2": (b"BZh", "bz2", "BZ2File", "bz2", "BZ2File", "bz2", "BZ2Decompressor"),
    ".xz": (b"\xfd7zXZ\x00", "lzma", "LZMAFile", "lzma", "LZMAFile", "lzma",
            "LZMADecompressor"),
}


def suffix_of(path):
    """".gz", ".bz2" or ".xz" for a compressed file's path, "" for a plain one."""
    suffix = os.path.splitext(path)[1]
    return suffix if suffix in FORMATS else ""


def suffix_of_magic(head):
    """The suffix of the compressed form whose magic number head begins with, or ""."""
    return next((suffix for suffix, (magic, *_rest) in FORMATS.items()
                 if head.startswith(magic)), "")


def _load(module, name):
    return getattr(importlib.import_module(module), name)


def reading(raw, suffix):
    """raw (a binary file) decompressed, as a file to read; raw itself if suffix is ""."""
    if not suffix:
        return raw
    _magic, module, name, *_rest = FORMATS[suffix]
    return _load(module, name)(fileobj=raw, mode="rb") if suffix == ".gz" \
        else _load(module, name)(raw, mode="rb")


def appending(sink, suffix):
    """A file that writes one new member or stream of sink's form to sink."""
    _magic, _module, _name, module, name, *_rest = FORMATS[suffix]
    return _load(module, name)(fileobj=sink, mode="ab") if suffix == ".gz" \
        else _load(module, name)(sink, mode="ab")


def decompressor(suffix):
    """A decompressor of one member or stream (its eof and unused_data tell its end)."""
    *_rest, module, name = FORMATS[suffix]
    return _load(module, name)(31) if suffix == ".gz" else _load(module, name)()
