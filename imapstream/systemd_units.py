"""imapbackup --accounts ... --systemd DIR: a service that runs the same command (its
paths made absolute, --systemd left out) and a timer that starts it nightly, written as
DIR/imapbackup-accounts.service and .timer.  Written, not shipped: the unit names the
imapbackup, accounts file and backup root of this install."""

import os
import re

NAME = "imapbackup-accounts"
PATHS = ("--accounts", "--slf", "-d", "--mbox-dir")  # options whose value is a path
PLAIN = re.compile(r"[A-Za-z0-9_./:@,+=-]+")

SERVICE = """\
[Unit]
Description=imapbackup of the accounts in {accounts}
Documentation=man:imapbackup(1) man:imapstream(7)
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
# Exit status 0: every account backed up.  75: each failure was temporary (a timeout,
# a lost connection, a busy account): the next run completes it.  65 (a bad line in the
# accounts file) and 77 (a login refused) need a person, as does 1, several kinds of
# failure: {root}/.imapbackup-accounts/summary.ndjson has a record per account.
ExecStart={command}
Nice=10
IOSchedulingClass=idle
# OnFailure=mail-admin@%n.service
"""

TIMER = """\
[Unit]
Description=Nightly imapbackup of the accounts in {accounts}

[Timer]
OnCalendar=*-*-* 02:30:00
RandomizedDelaySec=30min
Persistent=true

[Install]
WantedBy=timers.target
"""


def quote(word):
    """A word of ExecStart: systemd splits at blanks and reads C-style double quotes;
    % starts a specifier and $ a variable, so both are doubled."""
    word = word.replace("%", "%%").replace("$", "$$")
    if PLAIN.fullmatch(word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def command(argv, program):
    """The run's command line: program and argv without --systemd, paths absolute."""
    words, given = [os.path.abspath(program)], iter(argv)
    root = "."
    for word in given:
        option, equals, value = word.partition("=")
        if option == "--systemd":
            if not equals:
                next(given, None)
            continue
        if option in PATHS:
            value = value if equals else next(given, "")
            root = os.path.abspath(value) if option in ("-d", "--mbox-dir") else root
            words += [option, os.path.abspath(value)]
            continue
        words.append(word)
    if root == ".":
        words += ["-d", os.path.abspath(".")]
        root = os.path.abspath(".")
    return words, root


def write(directory, argv, program):
    words, root = command(argv, program)
    accounts = words[words.index("--accounts") + 1]
    os.makedirs(directory, exist_ok=True)
    text = {".service": SERVICE.format(accounts=accounts, root=root,
                                       command=" ".join(map(quote, words))),
            ".timer": TIMER.format(accounts=accounts)}
    for suffix, content in text.items():
        with open(os.path.join(directory, NAME + suffix), "w") as file:
            file.write(content)
