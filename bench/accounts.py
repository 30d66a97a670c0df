"""Many accounts (issue 17): imapbackup --accounts FILE against the test Dovecot.

    .venv/bin/python bench/accounts.py [--accounts N] [--messages M] [--jobs 1,2,4,8]

It makes N users (a passwd-file each, default 1000) of M small text messages (default
20) written into their maildirs, an accounts file naming them, and for each -j measures
a full run into an empty backup root and a no-change run after it: accounts per minute,
peak RSS of the largest process and of all processes of the run together (sampled from
/proc every 0.2 s), and the CPU seconds its processes used.  Where the time of one
account goes comes from the same steps timed alone: process start-up (each command's
--version), a login (imap-list of the folders), the rest.  The table replaces the
"accounts" section of bench/results.md (make bench-accounts).
"""

import argparse
import datetime as dt
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]

import corpus  # noqa: E402
import orjson  # noqa: E402
from dovecot import Dovecot  # noqa: E402
from report import update_results  # noqa: E402

VENV_BIN = os.path.dirname(sys.executable)
IMAPBACKUP = os.path.join(ROOT, "bin", "imapbackup")
# Processes one account starts: the job (imapbackup-accounts --job), imapbackup (bash),
# imap-list (the listing; an account names its password source, so no --login-source),
# mbox-ids, imap-fetch, mbox-merge, and jq once (the summary).
PYTHON_STARTS, JQ_STARTS = 5, 1


def text_message(user, number):
    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=number)
    body = "".join(f"Line {line} of message {number} for {user}.\n" for line in range(60))
    data = (f"From: Sender <sender@example.org>\nTo: {user}@example.org\n"
            f"Subject: message {number}\nMessage-ID: <{user}.{number}@bench>\n"
            f"Date: {when:%a, %d %b %Y %H:%M:%S +0000}\n\n{body}").encode()
    return corpus.Message("INBOX" if number % 4 else "Archive", data, ("\\Seen",), when)


class Peak:
    """Peak RSS (kB) of the largest process and of all processes descending from pid."""

    def __init__(self, pid):
        self.pid, self.largest, self.total = pid, 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while not self.done.wait(0.2):
            parents, rss = {}, {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/stat", "rb") as f:
                        parents[int(entry)] = int(f.read().rpartition(b")")[2].split()[1])
                    with open(f"/proc/{entry}/statm", "rb") as f:
                        rss[int(entry)] = int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")
                except (OSError, ValueError, IndexError):
                    continue
            tree, grown = {self.pid}, True
            while grown:
                more = {pid for pid, parent in parents.items() if parent in tree} - tree
                tree |= more
                grown = bool(more)
            sizes = [rss.get(pid, 0) // 1024 for pid in tree]
            self.largest = max(self.largest, *sizes)
            self.total = max(self.total, sum(sizes))

    def stop(self):
        self.done.set()
        self.thread.join()


def timed(argv, env, cwd=None):
    start = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    peak = Peak(process.pid)
    out, err = process.communicate()
    peak.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.monotonic() - start, cpu, peak, process.returncode, out, err


def setup(server, work, count, messages):
    lines = []
    for _ in range(count):
        user, password = server.new_user("fs")
        corpus.write_maildir(server.home(user), (text_message(user, n) for n in range(messages)),
                             server.mail_uid, server.mail_gid)
        secret = os.path.join(work, f"{user}.password")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(password + "\n")
        lines.append({"name": user, "server": f"{server.host}:{server.port}", "user": user,
                      "password_file": secret, "tls": "starttls", "cafile": str(server.cafile)})
    path = os.path.join(work, "accounts.ndjson")
    with open(path, "wb") as f:
        f.writelines(orjson.dumps(line) + b"\n" for line in lines)
    return path, lines[0]


def one_account_parts(server, work, first, env):
    """Seconds of one account's parts, each the best of 3: start-up of a Python command
    and of jq, a login with a folder listing (less a start-up)."""
    def best(argv):
        return min(timed(argv, env, work)[0] for _ in range(3))

    python = best([os.path.join(VENV_BIN, "imap-list"), "--version"])
    jq = best(["jq", "-n", "1"])
    login_env = dict(env, IMAP_SERVER=first["server"], IMAP_USER=first["user"],
                     IMAP_TLS="starttls", IMAP_CAFILE=first["cafile"],
                     IMAP_PASSWORD=server.password(first["user"]))
    listing = min(timed([os.path.join(VENV_BIN, "imap-list")], login_env, work)[0]
                  for _ in range(3))
    return python, jq, listing - python


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--accounts", type=int, default=1000)
    p.add_argument("--messages", type=int, default=20)
    p.add_argument("--jobs", default="1,2,4,8")
    p.add_argument("--results", default=os.path.join(HERE, "results.md"))
    options = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop Dovecot on the way out
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "imapstream")],
                   check=True)
    work = tempfile.mkdtemp(prefix="imapstream-bench-accounts-")
    os.chmod(work, 0o755)
    server = Dovecot(os.path.join(work, "dovecot"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAP_")}
    env["PATH"] = os.pathsep.join([VENV_BIN, env.get("PATH", "")])
    load = os.getloadavg()[0]
    rows = []
    try:
        server.start()
        start = time.monotonic()
        accounts, first = setup(server, work, options.accounts, options.messages)
        made = time.monotonic() - start
        parts = one_account_parts(server, work, first, env)
        for jobs in map(int, options.jobs.split(",")):
            root = os.path.join(work, f"backup-j{jobs}")
            for phase in ("full", "no-change"):
                seconds, cpu, peak, status, out, err = timed(
                    [IMAPBACKUP, "--accounts", accounts, "-j", str(jobs), "-d", root,
                     "--max-per-server", str(jobs), "--json"], env, work)
                closing = orjson.loads(out.splitlines()[-1])
                if status != 0 or closing["succeeded"] != options.accounts:
                    raise SystemExit(f"bench: -j {jobs} {phase}: status {status}\n"
                                     f"{err.decode()[-2000:]}")
                rows.append((jobs, phase, seconds, cpu, peak, closing["messages"]))
                print(rows[-1][:4], peak.largest, peak.total, file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    section = report(options, rows, parts, made, load)
    print(section)
    update_results(options.results, {"accounts": section})


def report(options, rows, parts, made, load):
    python, jq, login = parts
    startup = PYTHON_STARTS * python + JQ_STARTS * jq
    lines = [f"# Many accounts: imapbackup --accounts (issue 17), {dt.date.today()}", "",
             f"{options.accounts} accounts of {options.messages} text messages (~2.6 kB) on "
             f"the test Dovecot, one passwd-file per user, written into the maildirs in "
             f"{made:.0f} s; GNU parallel on this host, --max-per-server = -j; load "
             f"average (1 min) {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
             f"on {os.cpu_count()} cores (other work on the machine slows every figure).", "",
             "| -j | run | seconds | accounts/minute | CPU s per account | "
             "peak RSS largest process MB | peak RSS all processes MB | messages |",
             "|---|---|---|---|---|---|---|---|"]
    for jobs, phase, seconds, cpu, peak, messages in rows:
        lines.append(f"| {jobs} | {phase} | {seconds:.1f} | "
                     f"{options.accounts / seconds * 60:.0f} | {cpu / options.accounts:.2f} | "
                     f"{peak.largest / 1024:.0f} | {peak.total / 1024:.0f} | {messages} |")
    lines += ["", "Where one account's time goes (each step alone, best of 3): "
              f"start-up of a Python command {python:.3f} s x {PYTHON_STARTS} and of jq "
              f"{jq:.3f} s x {JQ_STARTS} = {startup:.2f} s; a login with a folder listing "
              f"{login:.3f} s beyond its start-up (imap-list and imap-fetch each log in)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
