"""The Gmail figures of issue 14, on the emulated account of tests/fake_gmail.py:

    .venv/bin/python bench/gmail.py [--seed N] [--messages N]

  before     what a backup of every folder would store: copies per distinct message
             and bytes (each label a folder, every message also in All Mail)
  backup     imap-list --once --all --since DIR | mbox-ids --missing -d DIR |
             imap-fetch | mbox-merge -d DIR: stored copies per distinct message, bytes,
             labels recoverable from the files, byte-exact
  gmail      imap-append -d DIR into an empty emulated Gmail: messages, those with
             their bytes, labels and flags right, and a rerun adding nothing
  dovecot    imap-append -d DIR into the test Dovecot (tests/dovecot.py): copies, and
             those in the folder of each label, byte-exact

Counts, not times: it prints a Markdown table (bench/gmail.md keeps the last one).
"""

import argparse
import collections
import contextlib
import io
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "tests")]

from dovecot import Dovecot  # noqa: E402
from fake_gmail import Account, FakeGmail, sample_account  # noqa: E402

from imapstream.commands import (  # noqa: E402
    imap_append,
    imap_fetch,
    imap_list,
    mbox_ids,
    mbox_merge,
)
from imapstream.mbox.archive import mbox_files  # noqa: E402
from imapstream.mbox.reader import scan  # noqa: E402
from imapstream.message import to_lf  # noqa: E402

FOLDER_OF = {"\\Inbox": "INBOX", "\\Sent": "Sent", "\\Draft": "Drafts",
             "\\Important": "Important", "\\Starred": "Starred", "\\Spam": "Junk",
             "\\Trash": "Trash"}


def run(module, argv, data=b""):
    out = io.BytesIO()
    with contextlib.redirect_stderr(io.StringIO()):
        status = module.main(argv, io.BytesIO(data), out)
    return status, out.getvalue()


@contextlib.contextmanager
def logged_in(env):
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.update({key: value})


def backup(directory):
    data = b""
    for module, argv in ((imap_list, ["--once", "--all", "--since", directory]),
                         (mbox_ids, ["--missing", "-d", directory]), (imap_fetch, []),
                         (mbox_merge, ["-d", directory])):
        _status, data = run(module, argv, data)


def figures(seed, count, work):
    account = sample_account(seed, count)
    distinct = len(account.messages)
    size = sum(len(m.data) for m in account.messages.values())
    copies = [m for folder in account.folders() for m in account.uids[folder]]
    rows = [("before (every folder)", f"{len(copies) / distinct:.2f}x copies, "
             f"{sum(len(account.messages[m].data) for m in copies) / size:.2f}x bytes")]
    directory = os.path.join(work, "backup")
    with FakeGmail(account) as server, logged_in(server.env()):
        backup(directory)
    held = [(r, d) for path in mbox_files(directory) for _o, r, d in scan(path)]
    wanted = collections.Counter((to_lf(m.data), frozenset(m.labels))
                                 for m in account.messages.values())
    got = collections.Counter((d, frozenset(r["labels"])) for r, d in held)
    rows.append(("backup (--once)", f"{len(held) / distinct:.2f}x copies, "
                 f"{sum(len(d) for _r, d in held) / sum(len(to_lf(m.data)) for m in account.messages.values()):.2f}x "  # noqa: E501
                 f"bytes (LF form), labels recoverable {sum((got & wanted).values())} of "
                 f"{distinct} ({100 * sum((got & wanted).values()) / distinct:.0f} %), "
                 f"{len(mbox_files(directory))} files"))
    target = Account()
    with FakeGmail(target) as server, logged_in(server.env()):
        run(imap_append, ["-d", directory])
        again = run(imap_append, ["-d", directory, "--json"])[1]

    def key(a):
        return collections.Counter((m.data, frozenset(m.labels), frozenset(m.flags))
                                   for m in a.messages.values())
    rows.append(("restore into empty Gmail", f"{len(target.messages)} messages of {distinct}, "
                 f"{sum((key(target) & key(account)).values())} byte-exact with labels "
                 f"and flags right; rerun appended {len(again.splitlines())}"))
    server = Dovecot(os.path.join(work, "dovecot")).start()
    try:
        user, _password = server.new_user("fs")
        with logged_in(server.env(user)):
            run(imap_append, ["-d", directory])
        client = server.client(user)
        found = collections.Counter()
        for _flags, _delimiter, name in client.list_folders():
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            for item in client.fetch(uids, ["BODY.PEEK[]"]).values() if uids else ():
                found[(name, item[b"BODY[]"])] += 1
        client.logout()
    finally:
        server.stop()
    expected = collections.Counter()
    for m in account.messages.values():
        hidden = [x for x in ("\\Spam", "\\Trash") if x in m.labels]
        for label in hidden[:1] or m.labels or ["Archive"]:
            expected[(FOLDER_OF.get(label, label), m.data)] += 1
    rows.append(("restore into Dovecot", f"{sum(found.values())} copies in "
                 f"{len({f for f, _d in found})} folders, {sum((found & expected).values())} "
                 f"of {sum(expected.values())} label-folder copies byte-exact"))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--messages", type=int, default=63)
    options = p.parse_args()
    with tempfile.TemporaryDirectory() as work, contextlib.redirect_stdout(sys.stderr):
        os.chmod(work, 0o755)  # as root, Dovecot's mail processes run as nobody
        rows = figures(options.seed, options.messages, work)
    print(f"Emulated Gmail account (tests/fake_gmail.py), seed {options.seed}, "
          f"{options.messages} messages\n\n| step | result |\n|---|---|")
    for step, result in rows:
        print(f"| {step} | {result} |")


if __name__ == "__main__":
    main()
