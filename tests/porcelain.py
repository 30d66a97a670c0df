"""bin/imapbackup as the tests run it: its path, a run with its output captured, and the
mbox files a backup directory holds."""

import os
import subprocess
from pathlib import Path

from imapstream.mbox.archive import mbox_files

REPO = Path(__file__).resolve().parent.parent
IMAPBACKUP = REPO / "bin" / "imapbackup"


def imapbackup(env, *args):
    return subprocess.run([str(IMAPBACKUP), *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def contents(directory):
    """{mbox file name: its bytes}, leaving out what else the plumbing keeps there."""
    return {os.path.basename(path): Path(path).read_bytes()
            for path in mbox_files(str(directory))}
