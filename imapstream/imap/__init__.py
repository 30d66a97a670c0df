"""IMAP: connection, authentication, transport, session and parsing (never the mbox side).

Importing this package first gives imapclient its version module without
importlib.metadata (see _imapclient_version)."""

import os
import sys
import types
from importlib.util import find_spec


def _imapclient_version():
    """imapclient/version.py asks importlib.metadata for imapclient's version as it is
    imported, which costs every command that talks IMAP ~25 ms of its start (importlib.
    metadata with zipfile, email, pathlib).  The same version is the Version: field of
    the IMAPClient-*.dist-info/METADATA beside the package: where exactly one is there,
    sys.modules gets an imapclient.version made from it, with version and version_info
    as imapclient makes them; otherwise nothing changes and imapclient finds it itself."""
    if "imapclient" in sys.modules:
        return
    try:
        spec = find_spec("imapclient")
        site = os.path.dirname(spec.submodule_search_locations[0])
        found = [name for name in os.listdir(site) if name.lower().startswith("imapclient-")
                 and name.endswith(".dist-info")]
        if len(found) != 1:
            return
        with open(os.path.join(site, found[0], "METADATA"), encoding="utf-8") as metadata:
            version = next(line[len("Version:"):].strip() for line in metadata
                           if line.startswith("Version:"))
        major, minor, micro = map(int, version.split("."))
    except (AttributeError, TypeError, IndexError, OSError, StopIteration, ValueError):
        return
    module = types.ModuleType("imapclient.version")
    module.version = version
    module.version_info = (major, minor, micro, "final")
    sys.modules[module.__name__] = module


_imapclient_version()
