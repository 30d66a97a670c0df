"""A backup directory: which file holds which folder."""

import os

from .folders import COMPRESSION_SUFFIX, SUFFIXES, file_stem


def folder_path(directory, folder, delimiter, compression="none"):
    """The existing file for a folder in any compression, else the one to create."""
    stem = os.path.join(directory, file_stem(folder, delimiter))
    for suffix in SUFFIXES:
        if os.path.lexists(stem + suffix):
            return stem + suffix
    return stem + COMPRESSION_SUFFIX[compression]


def mbox_files(directory):
    """The mbox files directly in a backup directory, sorted by name."""
    return sorted(os.path.join(directory, name) for name in os.listdir(directory)
                  if name.endswith(SUFFIXES) and not name.startswith(".#"))
