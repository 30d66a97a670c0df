"""A backup directory: which file holds which folder."""

import os
import unicodedata

from .folders import COMPRESSION_SUFFIX, SUFFIXES, file_stem

_listings = {}  # directory -> the NFC names last listed in it


def folder_path(directory, folder, delimiter, compression="none"):
    """The existing file for a folder in any compression, else the one to create.  A file
    the file system finds only under another spelling (it ignores case) belongs to
    another folder: this one then takes its distinct name (see folders)."""
    stem = file_stem(folder, delimiter)
    found = _existing(directory, stem)
    if found and not _spelled_so(directory, os.path.basename(found)):
        stem = file_stem(folder, delimiter, distinct=True)
        found = _existing(directory, stem)
    return found or os.path.join(directory, stem + COMPRESSION_SUFFIX[compression])


def _existing(directory, stem):
    for suffix in SUFFIXES:
        if os.path.lexists(os.path.join(directory, stem + suffix)):
            return os.path.join(directory, stem + suffix)
    return None


def _spelled_so(directory, name):
    """Whether the directory lists name as it is spelled (up to Unicode normalization,
    which macOS may change); listed again only when name is not in the last listing."""
    name = unicodedata.normalize("NFC", name)
    names = _listings.get(directory)
    if names is None or name not in names:
        names = _listings[directory] = {unicodedata.normalize("NFC", n)
                                        for n in os.listdir(directory)}
    return name in names


def mbox_files(directory):
    """The mbox files directly in a backup directory, sorted by name."""
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.endswith(SUFFIXES) and not name.startswith(".#"))
