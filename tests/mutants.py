"""make mutants: curated one-line mutants of the modules that hold imapstream(7)'s STABLE
promises.  Each is applied to the working tree, the tests named with it run, and the file
is restored (also on Ctrl-C or SIGTERM; a run killed harder leaves .mutant-backup files,
which the next run puts back first).  A mutant is killed when its tests fail.

    .venv/bin/python tests/mutants.py [-k SUBSTRING] [-v]

A mutant that survives is a line no test checks: kill it with a test, or say here, next to
it, why it cannot be killed (its note then begins "EQUIVALENT:", and it is expected to
survive).  Prints the score; exits 1 if any other survived.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PKG = "imapstream/"

# (file, the line's text to replace (unique in the file), its replacement, test files,
#  what the mutant breaks)
MUTANTS = [
    # The six the whole suite once let through (issue 12).
    ("imap/session.py", "if selected[b\"UIDVALIDITY\"] != self.uidvalidity:", "if False:",
     ["test_checkpoints.py", "test_quirks.py", "test_faults.py", "test_hostile_server.py"],
     "the UIDVALIDITY re-check after a reconnect"),
    ("mbox/reader.py", "or not whole and same and checkpoint.since <= mark.uidnext < "
     "checkpoint.uidnext:", "or not whole and same and checkpoint.since <= mark.uidnext:",
     ["test_checkpoints.py", "test_sidecar.py"],
     "a checkpoint from since on never moves a folder back"),
    ("commands/mbox_ids.py", "withdraw(record)  # its folder's records",
     "pass  # its folder's records", ["test_checkpoints.py", "test_bad_input.py"],
     "a held-back folder's checkpoint turns false"),
    ("mbox/sidecar.py", "or state[\"sha1\"] != hashlib.sha1(line, usedforsecurity=False)"
     ".hexdigest()", "or False", ["test_sidecar.py"],
     "the sidecar's rows are checked against their SHA-1"),
    ("errors.py", "reason = \"no space left on device\"", "pass",
     ["test_faults.py", "test_errors.py"], "a full disk says so"),
    ("imap/fetchparse.py", "if len(response) == 2 and isinstance(response[0], tuple)",
     "return None\n    if len(response) == 2 and isinstance(response[0], tuple)",
     ["test_fetchparse.py"], "the fast FETCH reader is used"),
    # The mbox form (imapstream(7), Mbox files).
    ("mbox/mboxrd.py", "|x-imapbase|content-length\"", "|x-imapbase\"",
     ["test_golden.py"], "Content-Length is escaped"),
    ("mbox/mboxrd.py", "parts += (view[done:line], b\">\")", "parts += (view[done:line], b\"\")",
     ["test_golden.py"], "From lines are quoted"),
    ("mbox/mboxrd.py", "return b\"\\n\\n\" if data and not data.endswith(b\"\\n\") else b\"\\n\"",
     "return b\"\\n\"", ["test_golden.py"], "a message without a final LF gets one"),
    ("mbox/flagheaders.py", "b\"Status: RO\\n\" if \"\\\\seen\" in lowered else",
     "b\"Status: O\\n\" if \"\\\\seen\" in lowered else", ["test_golden.py"],
     "\\Seen is Status: RO"),
    ("mbox/flagheaders.py", "room = ROOM if length is None else length - len(head) - 1",
     "room = ROOM if length is None else length - len(head)", ["test_flags_in_place.py"],
     "flag lines rewritten in place keep their length"),
    ("mbox/fold.py", "in_place = _in_place(changes) if writable and not drop else None",
     "in_place = None", ["test_flags_in_place.py"], "a change that fits is written in place"),
    ("mbox/fold.py", "if start < run:  # ours, a line each", "if False:  # ours, a line each",
     ["test_flags_in_place.py"], "a message's first line is never taken for our folding"),
    ("imap/store.py", "c.has_capability(\"QRESYNC\") and not c.refused_enable())",
     "c.has_capability(\"QRESYNC\"))", ["test_flags_follow.py"],
     "a refused ENABLE QRESYNC asks no VANISHED"),
    ("mbox/rowspans.py", "pieces += [line[done:start], orjson().dumps(row)]",
     "pieces += [line[done:end]]", ["test_flags_in_place.py"],
     "a fold in place writes the changed rows into the sidecar"),
    ("mbox/rowspans.py", "start = line.rfind(b\"[\", 0, at) if at > 0 else -1",
     "start = line.find(b\"[\", 0, at) if at > 0 else -1", ["test_flags_in_place.py"],
     "a row found by its bytes starts at its own bracket"),
    ("mbox/flagheaders.py", "_X_STATUS = ((\"\\\\answered\", \"A\"), (\"\\\\flagged\", \"F\"), "
     "(\"\\\\draft\", \"T\"), (\"\\\\deleted\", \"D\"))",
     "_X_STATUS = ((\"\\\\answered\", \"A\"), (\"\\\\flagged\", \"F\"), (\"\\\\draft\", \"T\"))",
     ["test_golden.py"], "\\Deleted is X-Status: D"),
    ("mbox/mboxrd.py", "meta[\"octets\"] = len(lf)", "meta[\"octets\"] = len(lf) + 1",
     ["test_golden.py"], "octets counts the message in LF form"),
    ("mbox/mboxrd.py", "if len(full) >= octets and full[octets:] == _padding(full[:octets]):",
     "if len(full) >= octets:", ["test_golden.py", "test_mail_clients.py"],
     "a message must end where octets says"),
    ("mbox/folders.py", "_UNSAFE = re.compile(\"[%./", "_UNSAFE = re.compile(\"[%/",
     ["test_golden.py", "test_formats.py"], "a '.' in a folder name part is %2E"),
    # The message stream and the records.
    ("stream.py", "if len(data) < length or inp.read(1) != b\"\\n\":", "if len(data) < length:",
     ["test_formats.py", "test_bad_input.py", "test_fuzz_records.py"],
     "a message is followed by one LF"),
    ("records.py", "return isinstance(value, int) and not isinstance(value, bool) and value > 0",
     "return isinstance(value, int) and value > 0",
     ["test_bad_input.py", "test_fuzz_records.py"], "true is not a positive integer"),
    # Folder checkpoints (imapstream(7), Folder checkpoint).
    ("list_jobs.py", "and session.reconnects == reconnects\n", "\n",
     ["test_checkpoints.py"], "a reconnect during a listing vouches for nothing"),
    ("commands/imap_fetch.py", "withdraw(record)", "pass",
     ["test_checkpoints.py"], "a message not fetched makes its checkpoint false"),
    ("mbox/reader.py", "or not whole and same and checkpoint.since <= mark.uidnext <",
     "or not whole and mark.uidnext <",
     ["test_checkpoints.py", "test_sidecar.py"],
     "a checkpoint from since on counts only where the file has the UIDs below since"),
    ("mbox/sidecar.py", "if not unchanged and (st.st_ino != self.st.st_ino or "
     "st.st_size == self.st.st_size):", "if False:", ["test_sidecar.py"],
     "a file rewritten in place is read again"),
    ("records.py", "        if line.strip():\n            yield lineno, line",
     "        if True:\n            yield lineno, line",
     ["test_golden.py"], "readers skip empty lines"),
    # Reading what was written.
    ("mbox/mboxrd.py", "    record[\"flags\"] = header_flags(*(own.get(name, b\"\")",
     "    record[\"flags\"] = [] and header_flags(*(own.get(name, b\"\")", ["test_golden.py"],
     "the flag headers are read back"),
    # Equivalent: HeldScan's fast path (held_head, quoted_until_from, held_ends) hands every
    # message it cannot vouch for to parse_held, so breaking it changes only the speed.
    ("mbox/mboxrd.py", "if buf[line] != 0x3E:  # not '>': a From line",
     "if False:  # not '>': a From line", ["test_golden.py", "test_scan.py"],
     "EQUIVALENT: the fast path finds the next From line"),
    ("mbox/compression.py", "\".gz\": (b\"\\x1f\\x8b\"", "\".gz\": (b\"\\x1f\\x8c\"",
     ["test_compression_and_merge.py"], "gzip on standard input is told by its magic number"),
    # Nothing lost, nothing doubled.
    ("mbox/reader.py", "counter[key] -= 1", "pass",
     ["test_backup.py", "test_compression_and_merge.py"],
     "each held message matches at most once"),
    ("mbox/append.py", "os.ftruncate(self._fd, self._start)\n", "pass\n",
     ["test_faults.py"], "a failed append is cut back"),
    ("commands/imap_fetch.py", "if record.get(\"uidvalidity\", answer.uidvalidity) != "
     "answer.uidvalidity:", "if False:", ["test_checkpoints.py", "test_quirks.py",
                                        "test_bad_input.py"],
     "imap-fetch refuses a record of another UIDVALIDITY"),
    # Deletions found by counting, without QRESYNC (imapstream(7), Update record).
    ("since.py", "if known and not whole and not deleted and (",
     "if known and not whole and (", ["test_deletions_counted.py"],
     "a folder counting fewer messages than held is listed"),
    ("list_jobs.py", "selected.exists < job.present.count + count:",
     "selected.exists < job.present.count:", ["test_deletions_counted.py"],
     "the new messages listed count against the deletions"),
    ("mbox/present.py", "and uid < below and \"missing_since\" in entry", "and uid < below",
     ["test_deletions_counted.py"], "only messages known missing are left out of the count"),
    ("mbox/present.py", "yield from _less(uid, end, present.missing)",
     "yield uid, end", ["test_deletions_counted.py"],
     "a message known missing is not reported vanished again"),
    # A command's start (issue 13): the early dial, orjson while waiting, no teardown.
    ("imap/dial.py", "sock = dialled.take()", "sock = None",
     ["test_early_start.py"], "the connection takes the socket dialled early"),
    ("imap/dial.py", "if time.monotonic() - self.started > FRESH:", "if False:",
     ["test_early_start.py"], "a socket dialled too long ago is not used"),
    ("imap/dial.py", "if not self._abandoned:", "if True:",
     ["test_early_start.py"], "a dial left while connecting closes its socket"),
    ("commands/imap_list.py", "    connection.dial_early(options)\n", "",
     ["test_early_start.py"], "imap-list dials before it loads imapclient"),
    ("commands/imap_fetch.py", "connection.dial_early(self.options)", "pass",
     ["test_early_start.py"], "imap-fetch dials before it loads imapclient"),
    ("records.py", "    _load_while_waiting(inp)\n", "",
     ["test_early_start.py"], "orjson is loaded while the input is on its way"),
    ("cli.py", "    os._exit(status)", "    sys.exit(status)",
     ["test_early_start.py"], "a console script ends without the interpreter's teardown"),
    ("imap/dial.py", "                self.starttls_sent = True\n", "",
     ["test_early_start.py"], "the dial's STARTTLS is the one whose answer is read"),
    ("imap/dial.py", "if self.starttls and not on_loopback(sock):", "if self.starttls:",
     ["test_early_start.py", "test_round_trips.py"],
     "on loopback STARTTLS waits for the greeting"),
    ("imap/dial.py", 'while (line := imap.readline()).startswith(b"* "):',
     'if (line := imap.readline()).startswith(b"* "):', ["test_early_start.py"],
     "untagged lines before the dial's answer are passed over"),
    ("imap/dial.py", "        if said:\n", "        if False:\n", ["test_early_start.py"],
     "a second greeting's capabilities are the capabilities"),
    ("imap/transport.py", "        if self.starttls_sent and not self._tls_established:",
     "        if False:", ["test_early_start.py"],
     "a greeting without capabilities: no command before the dial's STARTTLS is answered"),
    ("imap/transport.py", "            super()._get_capabilities()\n            raise",
     "            raise", ["test_early_start.py"],
     "a STARTTLS refused after a greeting without capabilities says whether it is offered"),
    ("imap/connection.py", 'if tls == "starttls" and not client.secured():',
     'if tls == "starttls":', ["test_early_start.py"],
     "no STARTTLS again where the connection began TLS as it opened"),
    # Folder announcements: imap-fetch logs in while imap-list lists (issue 13).
    ("commands/imap_list.py", "_announce([job for job in jobs if announces(job)]",
     "_announce([]", ["test_announce.py"], "imap-list announces the folders with new mail"),
    ("since.py", "status.uidnext > job.since", "status.uidnext >= job.since",
     ["test_announce.py"], "a folder whose flags changed, with no new mail, is not announced"),
    ("since.py", "return job.known is None and bool(status.messages)",
     "return job.known is None", ["test_announce.py"], "an empty folder is not announced"),
    ("commands/mbox_ids.py", "        if is_announce(record):  # for imap-fetch, at once\n"
     "            write_record(stdout, record)\n            continue\n", "",
     ["test_announce.py"], "mbox-ids passes an announcement on"),
    ("commands/imap_fetch.py", "                    server.log_in()\n",
     "                    pass\n", ["test_announce.py"], "imap-fetch logs in on an announcement"),
    # Commands sent before the login is answered (issue 13).
    ("imap/logins.py", "if command[0] == \"LOGIN\" and self.after_login is not None:",
     "if self.after_login is not None:", ["test_login_ahead.py"],
     "nothing goes behind AUTHENTICATE"),
    ("imap/auth.py", "        if sent == command:\n            raise LoginError(said)",
     "        raise LoginError(said)", ["test_login_ahead.py", "test_round_trips.py"],
     "a login sent ahead that the server refused is tried again as chosen over TLS"),
    ("imap/listing_ahead.py", "    return said if sent == command else None",
     "    return said", ["test_login_ahead.py"],
     "the listing sent ahead is used only where it asked what the server takes"),
    ("imap/listing_ahead.py", "if qresync and b\"QRESYNC\" in enabled and not offers(",
     "if False and not offers(", ["test_deletions_counted.py"],
     "a server that enables a QRESYNC it hides gets a new session"),
    ("imap/store.py", "modseq if condstore and isinstance(modseq, int) else None",
     "modseq if isinstance(modseq, int) else None", ["test_deletions_counted.py"],
     "EXAMINE's HIGHESTMODSEQ counts only where the server offers CONDSTORE"),
]


def backup_of(path):
    return path.with_name(path.name + ".mutant-backup")


def restore_leftovers():
    for left in (REPO / PKG).rglob("*.mutant-backup"):
        left.replace(left.with_name(left.name.removesuffix(".mutant-backup")))
        print(f"restored {left.name} left by an interrupted run", file=sys.stderr)


def run_mutant(file, old, new, tests, verbose):
    path = REPO / PKG / file
    text = path.read_text()
    if text.count(old) != 1:
        return "stale"  # the line moved or changed: update MUTANTS
    os.replace(path, backup_of(path))  # the original stays on disk until restored
    try:
        path.write_text(text.replace(old, new))
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   *(f"tests/{t}" for t in tests if (REPO / "tests" / t).exists())]
        try:
            done = subprocess.run(command, cwd=REPO, capture_output=not verbose, timeout=600)
        except subprocess.TimeoutExpired:
            return "killed (timeout)"
        return "killed" if done.returncode == 1 else \
            "survived" if done.returncode == 0 else f"error (pytest exit {done.returncode})"
    finally:
        os.replace(backup_of(path), path)


def main():
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("-k", default="", help="only mutants whose file or note has this")
    options.add_argument("-v", action="store_true", help="show pytest's output")
    options = options.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally blocks restore
    restore_leftovers()
    results = []
    for file, old, new, tests, note in MUTANTS:
        if options.k not in file + note:
            continue
        start = time.monotonic()
        outcome = run_mutant(file, old, new, tests, options.v)
        results.append((outcome, note.startswith("EQUIVALENT:")))
        print(f"{outcome:>9}  {time.monotonic() - start:5.1f}s  {file}: {note}", flush=True)
    killed = sum(r.startswith("killed") for r, _equivalent in results)
    equivalent = sum(equivalent for _r, equivalent in results)
    print(f"mutation score: {killed}/{len(results)} killed, {equivalent} of the others "
          f"equivalent (they change no result)")
    return 0 if all(r.startswith("killed") or equivalent for r, equivalent in results) else 1


if __name__ == "__main__":
    sys.exit(main())
