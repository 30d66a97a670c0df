"""make demo: a real backup of a throwaway Dovecot into the directory given (./backup).

Starts Dovecot (tests/dovecot.py) in a temporary directory, loads the sample mail
(tests/sample_mail.py) and gives every folder a fixed UIDVALIDITY, so that every run
meets the same account, UIDs and UIDVALIDITYs included: the first run backs it all up,
the next ones find nothing new.  Runs bin/imapbackup with the credentials in its
environment (never in argv), shows the files made and the messages each one holds,
checks them against the server, and stops the server.

    python tests/demo.py DIRECTORY

make demo-server: the same server and mail, kept running until Ctrl-C, with the
environment printed as shell commands to paste into another terminal.

    python tests/demo.py --server
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import sample_mail
from dovecot import Dovecot

REPO = Path(__file__).resolve().parent.parent
IMAPBACKUP = REPO / "bin" / "imapbackup"
USER = "alice"
FIRST_UIDVALIDITY = 1_120_000_000  # any fixed numbers do; these look like 2005's clock


def start_server() -> Dovecot:
    # Not below a 0700 directory: as root, the mail processes run as nobody.
    directory = tempfile.mkdtemp(prefix="imapstream-demo-")
    os.chmod(directory, 0o755)
    server = Dovecot(directory)
    if not server.available:
        sys.exit("demo: dovecot is not installed; `make demo` installs it (apt-get)")
    return server.start()


def load_sample_mail(server: Dovecot) -> Counter:
    with server.client(USER) as client:
        per_folder = sample_mail.append_sample_mail(client)
    for number, folder in enumerate(sample_mail.FOLDERS):
        server.doveadm("mailbox", "update", "--uid-validity", str(FIRST_UIDVALIDITY + number),
                       "-u", USER, folder)
    return per_folder


def run_imapbackup(server: Dovecot, directory: str) -> tuple[int, dict]:
    env = dict(os.environ, **server.env(USER))
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    print(f"\n$ imapbackup -d {directory} --json        # IMAP_SERVER={env['IMAP_SERVER']}, "
          f"IMAP_USER={USER}, IMAP_PASSWORD and IMAP_TLS=starttls in the environment",
          flush=True)
    done = subprocess.run([str(IMAPBACKUP), "-d", directory, "--json"], env=env,
                          stdout=subprocess.PIPE, text=True, check=False)
    print(done.stdout, end="")
    summary = json.loads(done.stdout.splitlines()[-1]) if done.stdout.strip() else {}
    return done.returncode, summary


def show_backup(directory: str, server_counts: Counter) -> bool:
    """Print each file with its messages and size; True if every folder's count matches."""
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable),
                                                 os.environ.get("PATH", "")]))
    held = subprocess.run(["mbox-ids", "-d", directory], env=env, stdout=subprocess.PIPE,
                          check=True).stdout.splitlines()
    records = [json.loads(line) for line in held]
    per_file = Counter(os.path.basename(r["file"]) for r in records)
    per_folder = Counter(r["folder"] for r in records)
    print(f"\n{directory}/ holds, as `mbox-ids -d {directory}` reads it:")
    print(f"  {'file':<36} {'messages':>9} {'bytes':>10}")
    for name in sorted(per_file):
        size = os.path.getsize(os.path.join(directory, name))
        print(f"  {name:<36} {per_file[name]:>9} {size:>10}")
    print(f"  {'total':<36} {sum(per_file.values()):>9}")
    wanted = {folder: count for folder, count in server_counts.items() if count}
    return dict(per_folder) == wanted


def keep_running() -> int:
    """The demo server until Ctrl-C (or SIGTERM), and the environment to reach it."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server = start_server()
    try:
        per_folder = load_sample_mail(server)
        path = os.pathsep.join([str(REPO / "bin"), os.path.dirname(sys.executable), "$PATH"])
        variables = dict(server.env(USER))
        print(f"Dovecot on {server.host}:{server.port} (STARTTLS; IMAPS on "
              f"{server.ssl_port}): user {USER} has {sum(per_folder.values())} sample "
              f"messages in {len(per_folder)} folders.  Paste into another shell:\n")
        print("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items()))
        print(f'export PATH="{path}"')
        print("imapbackup -d /tmp/demo-backup    # or imap-list, man imapstream ...\n")
        print("Ctrl-C stops the server and removes its mail.", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("demo server stopped", flush=True)
        return 0
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    if argv == ["--server"]:
        return keep_running()
    directory = argv[0] if argv else "backup"
    server = start_server()
    try:
        per_folder = load_sample_mail(server)
        print(f"Dovecot on {server.host}:{server.port}: user {USER} has "
              f"{sum(per_folder.values())} sample messages in {len(per_folder)} folders, "
              f"including {sample_mail.Q3}, {sample_mail.DRAFTS_DE} and "
              f"{sample_mail.PUNCTUATED}.")
        status, summary = run_imapbackup(server, directory)
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
    complete = show_backup(directory, per_folder)
    print()
    if not complete:
        print("The backup does not hold what the server has: see the messages above.")
        return status or 1
    print(f"Every message of the server is in {directory}/, count for count.")
    if summary.get("messages") == 0:
        print("This run appended nothing: it was incremental, and the files are unchanged.")
    else:
        print("Run `make demo` again: the next run finds nothing new and appends nothing.")
    print(f"Read them with `mutt -R -f {directory}/INBOX.mbox`; the README explains more.")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
