"""imapbackup-accounts: what imapbackup --accounts FILE runs.  Each account of FILE is a
job of GNU parallel (N at a time on each host; on this one, or with -S/--slf on the
host that rendezvous hashing gives the account), which runs `imapbackup-accounts --job
ACCOUNT` there; its record comes back on parallel's standard output (over ssh too).
The records, with "host", and a closing record go into BACKUP_ROOT/.imapbackup-accounts/
summary.ndjson, where --resume finds the accounts done."""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .. import account_run, systemd_units
from ..accounts import BadLine, host_for, login_key, parse_account, read_accounts
from ..cli import ArgumentParser, entry_point, guarded
from ..diagnostics import count, warn
from ..errors import DATAERR, OK, PARTIAL, UNAVAILABLE, CommandError, UsageError
from ..records import orjson, write_record

PROG = "imapbackup"
STOP = "TERM,60000,KILL,25"  # parallel's --termseq: a stopped job has a minute to end


def positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"wants a number from 1 up, not '{text}'")
    return int(text)


def build_parser():
    parser = ArgumentParser(
        prog=PROG, description="Back up every account of an accounts file (imapstream(7)) "
        "with GNU parallel, on this host or over ssh on several.")
    parser.add_argument("--accounts", metavar="FILE",
                        help="the accounts file: NDJSON, one account per line")
    parser.add_argument("-j", "--jobs", type=positive, default=1, metavar="N",
                        help="back up N accounts at a time on each host (default 1)")
    parser.add_argument("--max-per-server", type=positive, default=4, metavar="N",
                        help="at most N accounts of one server at a time on a host "
                        "(default 4)")
    parser.add_argument("-S", "--sshlogin", action="append", default=[], metavar="LOGIN",
                        help="run accounts on this host over ssh (parallel's -S; "
                        "repeatable, or LOGIN,LOGIN); each account on one host")
    parser.add_argument("--slf", metavar="FILE",
                        help="the hosts, one sshlogin a line (parallel's --slf)")
    parser.add_argument("-d", "--mbox-dir", default=".", metavar="DIR",
                        help="the backup root: an account's dir is relative to it "
                        "(default: the current directory; over ssh, the login's)")
    parser.add_argument("--resume", action="store_true",
                        help="only the accounts that did not succeed in the last run")
    parser.add_argument("--json", action="store_true",
                        help="each account's record and the closing one on standard output")
    parser.add_argument("--systemd", metavar="DIR",
                        help="write a service and timer that run this command nightly "
                        "into DIR, and exit")
    parser.add_argument("--job", help=argparse.SUPPRESS)
    parser.environment += [("PATH", "where parallel, ssh and imapbackup are"),
                           ("PARALLEL_SSH", "the ssh command parallel uses")]
    return parser


def main(argv, stdin, stdout):
    return guarded(PROG, _main, argv, stdin, stdout)


def _main(argv, _stdin, stdout):
    args = build_parser().parse_args(argv)
    if args.job is not None:
        record = account_run.run_account(parse_account(args.job.encode()), args.mbox_dir,
                                         args.max_per_server)
        write_record(stdout, record)
        return record["status"]
    if args.accounts is None:
        raise UsageError("the following arguments are required: --accounts")
    logins = sshlogins(args)
    with open(args.accounts, "rb") as file:
        accounts = list(read_accounts(file))
    if args.systemd is not None:
        systemd_units.write(args.systemd, argv, account_run.imapbackup_program())
        return OK
    return Run(args, logins, stdout).run(accounts)


def sshlogins(args):
    logins = [login for given in args.sshlogin for login in given.split(",") if login]
    if args.slf is not None:
        with open(args.slf) as file:
            logins += [line.strip() for line in file
                       if line.strip() and not line.lstrip().startswith("#")]
    if len({login_key(login) for login in logins}) != len(logins):
        raise UsageError("a host is given twice in -S or --slf")
    return logins


class Run:
    """One run over the accounts: the parallel processes, the records, the summary."""

    def __init__(self, args, logins, stdout):
        self.args, self.logins, self.stdout = args, logins, stdout
        self.state = Path(args.mbox_dir, account_run.STATE)
        self.records = {}  # account name -> its record, in this run or the one resumed
        self.stopped = None
        self.processes = []
        self.start = time.monotonic()

    def run(self, accounts):
        self.state.mkdir(mode=0o700, parents=True, exist_ok=True)
        carried = self.done_before(accounts) if self.args.resume else {}
        summary = self.state / "summary.ndjson"
        fd = os.open(summary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "wb") as self.log:
            for record in carried.values():
                self.keep(record, show=False)
            groups = {}
            for account in accounts:
                if isinstance(account, BadLine):
                    self.bad_line(account)
                elif account.name not in carried:
                    login = host_for(account.name, self.logins) if self.logins else None
                    groups.setdefault(login, []).append(account)
            self.run_groups(groups)
            return self.close(accounts, len(carried))

    def done_before(self, accounts):
        names = {account.name for account in accounts if not isinstance(account, BadLine)}
        done = {}
        try:
            lines = (self.state / "summary.ndjson").read_bytes().splitlines()
        except FileNotFoundError:
            return done
        for line in lines:
            try:
                record = orjson().loads(line)
            except ValueError:
                continue  # a line torn by a crash: its account runs again
            if record.get("account") in names and record.get("status") == OK:
                done[record["account"]] = record
        return done

    def bad_line(self, bad):
        name = bad.name if bad.name is not None else f"line {bad.lineno}"
        error = f"{self.args.accounts}:{bad.lineno}: {bad.problem}"
        self.keep(account_run.account_record(name, DATAERR, error=error))

    def keep(self, record, show=True):
        if show and record["status"] != OK:
            where = f" on {record['host']}" if record.get("host") else ""
            warn(PROG, f"account {record['account']}{where}: {record.get('error')} "
                 f"(exit status {record['status']})")
        self.records[record["account"]] = record
        self.log.write(orjson().dumps(record) + b"\n")
        self.log.flush()
        if show and self.args.json:
            write_record(self.stdout, record)

    def run_groups(self, groups):
        """A parallel per host (one for this one), all at once; their records as they
        come.  A first signal lets the running accounts finish and starts no more
        (parallel's SIGHUP); a second stops them (parallel's SIGTERM)."""
        import queue  # here and shlex below: the --job of one account needs neither

        lines = queue.Queue()
        if groups and shutil.which("parallel") is None:
            raise CommandError("GNU parallel is not installed (apt-get install parallel)",
                               UNAVAILABLE)
        # No IMAP_* variable of the caller's reaches a job; no terminal either (a new
        # session), so no job asks for a password.
        env = {key: value for key, value in os.environ.items() if not key.startswith("IMAP_")}
        for login, accounts in groups.items():
            process = subprocess.Popen(self.parallel(login), env=env, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, start_new_session=True)
            self.processes.append(process)
            feed = "".join(account.line() + "\n" for account in accounts).encode()
            threading.Thread(target=_feed, args=(process.stdin, feed), daemon=True).start()
            threading.Thread(target=_read, args=(process.stdout, login, lines),
                             daemon=True).start()
        for signum in account_run.SIGNALS:
            signal.signal(signum, self.stop)
        ended = 0
        while ended < len(self.processes):
            login, line = lines.get()
            if line is None:
                ended += 1
                continue
            try:
                record = orjson().loads(line)
                record["account"]
            except (ValueError, KeyError, TypeError):
                sys.stderr.buffer.write(line)
                continue
            self.keep({**record, "host": login} if login else record)
        for process in self.processes:
            process.wait()

    def parallel(self, login):
        import shlex

        command = ["imapbackup-accounts", "--job", "{}", "-d", self.args.mbox_dir,
                   "--max-per-server", str(self.args.max_per_server)]
        # parallel joins the command's words into a shell line: each but {} quoted.
        words = [word if word == "{}" else shlex.quote(word) for word in command]
        joblog = "joblog" if login is None else f"joblog.{_file_name(login_key(login))}"
        hosts = [] if login is None else ["-S", login]
        return ["parallel", "-j", str(self.args.jobs), "--termseq", STOP,
                "--joblog", str(self.state / joblog), *hosts, *words]

    def stop(self, signum, _frame):
        how = signal.SIGHUP if self.stopped is None else signal.SIGTERM
        self.stopped = self.stopped or 128 + signum
        for process in self.processes:
            if process.poll() is None:
                os.kill(process.pid, how)

    def close(self, accounts, resumed):
        for account in accounts:
            if account.name is None or account.name in self.records:
                continue
            if self.stopped:
                error = "not finished: the run was stopped"
            else:
                error = "no record came back (see parallel's messages above)"
            record = account_run.account_record(account.name, self.stopped or UNAVAILABLE,
                                                error=error)
            if self.logins:
                record["host"] = host_for(account.name, self.logins)
            self.keep(record)
        records = list(self.records.values())
        failed = sorted(r["account"] for r in records if r["status"] != OK)
        statuses = {r["status"] for r in records if r["status"] != OK}
        status = self.stopped or (OK if not failed else
                                  statuses.pop() if len(statuses) == 1 else PARTIAL)
        seconds = round(time.monotonic() - self.start, 1)
        messages = sum(r["messages"] for r in records)
        closing = {"accounts": len(records), "succeeded": len(records) - len(failed),
                   "resumed": resumed, "failed": failed, "messages": messages,
                   "bytes": sum(r["bytes"] for r in records), "seconds": seconds,
                   "status": status}
        self.log.write(orjson().dumps(closing) + b"\n")
        if self.args.json:
            write_record(self.stdout, closing)
        sys.stderr.write(
            f"SUMMARY: {count(len(records), 'account')}, {closing['succeeded']} backed up"
            f"{f' ({resumed} in the run resumed)' if resumed else ''}, {len(failed)} failed"
            f"{': ' + ', '.join(failed) if failed else ''}; {count(messages, 'message')} "
            f"appended ({count(closing['bytes'], 'byte')}) in {seconds} s\n")
        return status


def _file_name(text):
    return "".join(c if c.isalnum() or c in "._@-" else "_" for c in text)


def _feed(pipe, data):
    try:
        pipe.write(data)
        pipe.close()
    except BrokenPipeError:
        pass


def _read(pipe, login, lines):
    for line in pipe:
        lines.put((login, line))
    lines.put((login, None))


def run():
    entry_point(main)
