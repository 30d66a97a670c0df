"""The benchmark behind `make bench`: imapstream beside mbsync, against the same Dovecot.

    .venv/bin/python bench/run.py [--large] [--runs N] [--only GROUP,...] [--keep]

It starts the test Dovecot (tests/dovecot.py), writes the deterministic corpus of
bench/corpus.py into a fresh user's maildir (SMALL by default, LARGE with --large once
there is disk for it), and measures, as the median of several runs (5 SMALL, 3 LARGE):

  full       a backup into an empty directory
  no-change  the same backup run again with nothing new on the server
  +1%        a backup after 1% new mail arrived, from a copy of the full backup
  mbox-ids   reading every mbox file of the backup with no sidecar, plain and gzip

for mbsync (Debian's isync, installed with apt-get when missing; STARTTLS as the
imapstream commands use, the password through PassCmd), bin/imapbackup (the porcelain)
and the bare one-pass pipeline

  imap-list --all --since DIR --announce | mbox-ids --missing -d DIR | imap-fetch |
      mbox-merge -d DIR

Peak RSS comes from GNU time: per process for the pipeline, the largest process of the
tree for mbsync and imapbackup.  That is the group "loopback"; the groups "links",
"folders", "cap" and "big" (bench/links.py) run the same tools through an emulated
link (bench/linkproxy.py: a delay, a bandwidth cap, round trips counted from a trace);
"flags" (bench/flags.py) measures a run after 1% of 20,000 messages changed flags.
--only runs some groups (e.g. --only links); each group's table goes to stdout and
replaces its own section of bench/results.md, whose other sections stay.
"""

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]

import corpus  # noqa: E402
import flags  # noqa: E402
import links  # noqa: E402
from dovecot import Dovecot  # noqa: E402
from report import Table, update_results  # noqa: E402

GROUPS = ("loopback", *links.GROUPS, *flags.GROUPS)

VENV_BIN = os.path.dirname(sys.executable)
IMAPBACKUP = os.path.join(ROOT, "bin", "imapbackup")
TIME = "/usr/bin/time"
MBSYNCRC = """\
IMAPAccount bench
Host {host}
Port {port}
User {user}
PassCmd "cat {passfile}"
SSLType STARTTLS
CertificateFile {cafile}

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {target}/
Inbox {target}/INBOX
SubFolders Verbatim

Channel bench
Far :bench-far:
Near :bench-near:
Patterns *
Create Near
Sync Pull
SyncState *
CopyArrivalDate yes
"""


class Run:
    """One measured command: wall seconds, exit statuses, peak RSS (KiB) per process."""

    def __init__(self, seconds, statuses, rss):
        self.seconds, self.statuses, self.rss = seconds, statuses, rss
        self.trace = None  # the link proxy's events (bench/linkproxy.py), if it ran

    @property
    def ok(self):
        return all(s == 0 for s in self.statuses)


class Measured:
    """Commands wrapped in /usr/bin/time, which reports each one's peak RSS.  (The
    ru_maxrss that wait4 gives for a child of this process would start from this
    process's own size: Linux carries it over fork and exec.)"""

    def __init__(self, work):
        self.work, self.number = work, 0

    def wrap(self, argv):
        self.number += 1
        report = os.path.join(self.work, f"rss.{self.number}")
        return report, [TIME, "-f", "%M", "-o", report, *argv]

    def run(self, commands, env, log):
        """Run commands as a pipeline (one command: alone); returns a Run."""
        start = time.perf_counter()
        procs, reports, previous = [], [], subprocess.DEVNULL
        for number, argv in enumerate(commands):
            report, wrapped = self.wrap(argv)
            last = number == len(commands) - 1
            proc = subprocess.Popen(wrapped, env=env, stdin=previous, stderr=log,
                                    stdout=log if last else subprocess.PIPE)
            if previous is not subprocess.DEVNULL:
                previous.close()
            previous = proc.stdout
            procs.append(proc)
            reports.append(report)
        statuses = [proc.wait() for proc in procs]
        seconds = time.perf_counter() - start
        rss = []
        for report in reports:
            with open(report) as f:
                rss.append(int(f.read().split()[-1]))
            os.unlink(report)
        return Run(seconds, statuses, rss)


class Bench:
    """One corpus in one user's mailbox of server, and the tools run against it
    directly or, after via(proxy), through a link proxy."""

    def __init__(self, spec, runs, work, server, message=None):
        self.spec, self.runs, self.work, self.server = spec, runs, work, server
        self.log = open(os.path.join(work, "commands.log"), "ab")
        self.measured = Measured(work)
        self.corpus = corpus.Corpus(spec)
        self.message = message or self.corpus.message
        self.count = self.largest = 0
        self.proxy = None
        self.options = []  # connection options for ours, e.g. --link-compression on

    def start(self):
        self.user, password = self.server.new_user("fs")
        self.via(None)
        self.passfile = os.path.join(self.work, "password")
        with open(os.open(self.passfile, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(password + "\n")

    def via(self, proxy):
        """Run the tools through proxy (a LinkProxy), or straight to the server."""
        self.proxy = proxy
        self.port = proxy.port if proxy else self.server.port
        self.env = dict(os.environ, **self.server.env(self.user))
        self.env["IMAP_SERVER"] = f"{self.server.host}:{self.port}"
        if proxy and proxy.outward:
            self.env["IMAP_SERVER"] = f"{proxy.outward}:{proxy.outward_port}"
        self.env["PATH"] = os.pathsep.join([VENV_BIN, os.environ.get("PATH", "")])

    def load(self, numbers):
        messages = (self.message(n) for n in numbers)
        count, size, largest = corpus.write_maildir(
            self.server.home(self.user), messages, self.server.mail_uid, self.server.mail_gid)
        self.server.doveadm("force-resync", "-u", self.user, "*")
        self.count += count
        self.largest = max(self.largest, largest)
        return count, size

    # -- the tools -------------------------------------------------------------

    def mbsync(self, target):
        os.makedirs(target, exist_ok=True)
        rc = target + ".mbsyncrc"
        with open(rc, "w") as f:
            f.write(MBSYNCRC.format(host="localhost", port=self.port,
                                    user=self.user, passfile=self.passfile,
                                    cafile=self.server.cafile, target=target))
        return self.measured.run([["mbsync", "-q", "-c", rc, "bench"]], self.env, self.log)

    def imapbackup(self, target):
        return self.measured.run([[IMAPBACKUP, "-d", target, "--nospinner", *self.options]],
                                 self.env, self.log)

    def pipeline(self, target):
        os.makedirs(target, exist_ok=True)
        return self.measured.run([["imap-list", "--all", "--since", target, "--announce",
                                   *self.options],
                                  ["mbox-ids", "--missing", "-d", target],
                                  ["imap-fetch", "--no-progress", *self.options],
                                  ["mbox-merge", "-d", target]], self.env, self.log)

    def tools(self):
        return {"mbsync": self.mbsync, "imapbackup": self.imapbackup,
                "pipeline": self.pipeline}

    # -- the phases ------------------------------------------------------------

    def repeat(self, tool, prepare):
        runs = []
        for number in range(self.runs):
            target = prepare(number)
            if self.proxy:
                self.proxy.take_trace()
            run = tool(target)
            if self.proxy:
                run.trace = self.proxy.take_trace()
            if not run.ok:
                raise SystemExit(f"bench: {tool.__name__} failed with {run.statuses}; "
                                 f"see {self.log.name}")
            runs.append(run)
        return runs

    def fresh(self, name):
        def prepare(number):
            target = os.path.join(self.work, f"{name}.{number}")
            if number:
                remove(os.path.join(self.work, f"{name}.{number - 1}"))
                remove(os.path.join(self.work, f"{name}.{number - 1}.mbsyncrc"))
            return target
        return prepare

    def copy_of(self, base):
        def prepare(_number):
            target = base + ".copy"
            remove(target)
            subprocess.run(["cp", "-a", base, target], check=True)
            os.sync()  # on disk, as yesterday's backup is: no run pays for the copy's writes
            return target
        return prepare

    def measure(self, table):
        tools = self.tools()
        for name, tool in tools.items():  # warm the server's caches, untimed
            tool(os.path.join(self.work, f"warmup-{name}"))
            remove(os.path.join(self.work, f"warmup-{name}"))
        bases = {}
        for name, tool in tools.items():
            table.add("full backup", name, self.repeat(tool, self.fresh(name)))
            bases[name] = os.path.join(self.work, f"{name}.{self.runs - 1}")
            os.rename(bases[name], os.path.join(self.work, f"{name}.base"))
            bases[name] = os.path.join(self.work, f"{name}.base")
        self.check(bases)
        for name, tool in tools.items():
            table.add("no-change rerun", name, self.repeat(tool, lambda _n, b=bases[name]: b))
        snapshots = {}
        for name, base in bases.items():
            snapshots[name] = base + ".before-new-mail"
            subprocess.run(["cp", "-a", base, snapshots[name]], check=True)
        first = self.spec.messages
        added, size = self.load(range(first, first + max(1, self.spec.messages // 100)))
        table.note(f"+1% new mail: {added} messages, {size / 1e6:.1f} MB")
        for name, tool in tools.items():
            table.add("+1% new mail", name, self.repeat(tool, self.copy_of(snapshots[name])))
        self.check({name: snapshot + ".copy" for name, snapshot in snapshots.items()})
        self.scan(table, bases["pipeline"])

    def check(self, backups):
        """Every message of the server is in each backup, once."""
        counts = {name: sum(len(files) for directory, _dirs, files in os.walk(backup)
                            if os.path.basename(directory) in ("cur", "new"))
                  if name == "mbsync" else
                  subprocess.run(["mbox-ids", "-d", backup], env=self.env,
                                 capture_output=True, check=True).stdout.count(b"\n")
                  for name, backup in backups.items()}
        if any(count != self.count for count in counts.values()):
            raise SystemExit(f"bench: the server has {self.count} messages, but the "
                             f"backups hold {counts}")

    def scan(self, table, backup):
        empty = os.path.join(self.work, "empty.mbox")
        open(empty, "wb").close()
        startup = self.repeat(lambda _d: self.measured.run(
            [["mbox-ids", empty]], self.env, subprocess.DEVNULL), lambda _n: empty)
        table.startup = min(r.seconds for r in startup)
        table.note(f"mbox-ids start-up (an empty file): {table.startup:.3f} s, best of "
                   f"{self.runs}; the scan rates net of it are in the last column")
        for kind, suffix in (("plain", ".mbox"), ("gzip", ".mbox.gz")):
            directory = os.path.join(self.work, f"scan-{kind}")
            os.makedirs(directory, exist_ok=True)
            size = 0
            for name in sorted(os.listdir(backup)):
                if name.endswith(".mbox") and not name.startswith("."):
                    source = os.path.join(backup, name)
                    size += os.path.getsize(source)
                    target = os.path.join(directory, name[:-5] + suffix)
                    if kind == "gzip":
                        with open(target, "wb") as out:
                            subprocess.run(["gzip", "-6", "-c", source], stdout=out, check=True)
                    else:
                        shutil.copyfile(source, target)
            files = [os.path.join(directory, n) for n in sorted(os.listdir(directory))]

            def prepare(_number, directory=directory):
                for name in os.listdir(directory):
                    if name.startswith("."):
                        os.unlink(os.path.join(directory, name))  # no sidecar
                return directory

            runs = self.repeat(lambda _d, files=files: self.measured.run(
                [["mbox-ids", *files]], self.env, subprocess.DEVNULL), prepare)
            table.add_scan(f"mbox-ids, {kind}", runs, size)


def remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def ensure_packages():
    """mbsync (Debian's isync) and GNU time, installed with apt-get when missing."""
    missing = [package for program, package in (("mbsync", "isync"), (TIME, "time"))
               if not shutil.which(program)]
    if not missing:
        return
    print(f"bench: installing {' '.join(missing)} with apt-get", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], env=env, check=True)


def versions():
    def first_line(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True).stdout.split("\n")[0]
        except OSError:
            return "?"
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    return (f"{dt.date.today()}, {os.cpu_count()} x {cpu}, Python {platform.python_version()}, "
            f"Dovecot {first_line(['dovecot', '--version'])}, "
            f"{first_line(['mbsync', '--version'])}")


def loopback(spec, runs, work, server):
    """The tools straight to the server: the figures of the earlier performance work."""
    bench = Bench(spec, runs, work, server)
    bench.start()
    started, load = time.perf_counter(), os.getloadavg()[0]
    count, size = bench.load(range(spec.messages))
    table = Table(spec.name, count, size, runs, versions(), bench.largest)
    table.note(f"loaded into the maildir in {time.perf_counter() - started:.1f} s")
    bench.measure(table)
    table.note(f"load average (1 min) at the start {load:.2f}, at the end "
               f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores: other work on the "
               f"machine makes every number slower")
    return table.markdown()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--large", action="store_true", help="the 1 GB corpus (needs ~8 GB disk)")
    p.add_argument("--runs", type=int, help="runs per measurement (default 5, 3 with --large)")
    p.add_argument("--only", metavar="GROUP,...", default=",".join(GROUPS),
                   help=f"measure only these of {', '.join(GROUPS)} (default all)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--results", default=os.path.join(HERE, "results.md"))
    options = p.parse_args()
    only = options.only.split(",")
    if not set(only) <= set(GROUPS):
        p.error(f"--only takes some of {', '.join(GROUPS)}")
    spec = corpus.LARGE if options.large else corpus.SMALL
    runs = options.runs or (3 if options.large else 5)
    ensure_packages()
    # The commands start from bytecode, as after pip install (not so in an editable
    # install under PYTHONDONTWRITEBYTECODE, which would compile them at every start).
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(ROOT, "imapstream")],
                   check=True)
    work = tempfile.mkdtemp(prefix="imapstream-bench-")
    os.chmod(work, 0o755)  # as root, Dovecot's mail processes run as nobody
    need = spec.target_bytes * 8
    if shutil.disk_usage(work).free < need:
        shutil.rmtree(work)
        raise SystemExit(f"bench: {spec.name} needs {need / 1e9:.0f} GB free in "
                         f"{tempfile.gettempdir()}")
    server = Dovecot(os.path.join(work, "dovecot"))
    sections = {}
    try:
        server.start()
        for group in only:
            if group == "loopback":
                sections[f"loopback-{spec.name}"] = loopback(spec, runs, work, server)
            elif group == "cap":  # also against a Dovecot that offers COMPRESS=DEFLATE
                zlib = Dovecot(os.path.join(work, "dovecot-zlib"), imap_zlib=True)
                try:
                    zlib.start()
                    sections[group] = links.capped(
                        lambda s, m=None: Bench(s, runs, work, server, m), versions(),
                        lambda s, m=None, z=zlib: Bench(s, runs, work, z, m))
                finally:
                    zlib.stop()
            else:
                sections[group] = {**links.GROUPS, **flags.GROUPS}[group](
                    lambda s, m=None: Bench(s, runs, work, server, m), versions())
                sections[group] += (f"\n- load average (1 min) at the end "
                                    f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
            print(sections[group if group != "loopback" else f"loopback-{spec.name}"])
    finally:
        server.stop()
        if options.keep:
            print(f"bench: work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    update_results(options.results, sections)


if __name__ == "__main__":
    main()
