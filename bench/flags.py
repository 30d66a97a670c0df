"""The benchmark's group "flags" (bench/run.py --only flags): a 20,000-message account
(about 80 MB of text in 14 folders, no big messages) whose server changes the flags of
1% of the messages (\\Flagged toggled, by another IMAP client).  Measured, as medians:
the bare pipeline run with nothing new, and the run after the change (one CHANGEDSINCE
FETCH per folder, the flag journal folded into the files), each from the same copy of
the backup; and mbsync's flag sync (Sync Pull) the same way.  The target of issue 16:
the run after the change at most 1.5x the no-change run.
"""

import os
import random
import subprocess

import corpus
from report import median

SPEC = corpus.Spec("flags", 20_000, 0, 80_000_000, 2016)
SHARE = 100  # one message in SHARE changes flags


def flags_group(make, versions):
    bench = make(SPEC)
    bench.start()
    _count, size = bench.load(range(SPEC.messages))
    tools = {"pipeline": bench.pipeline, "mbsync": bench.mbsync}
    bases = {}
    for name, tool in tools.items():
        bases[name] = os.path.join(bench.work, f"flags-{name}.base")
        if not tool(bases[name]).ok:
            raise SystemExit(f"bench: {name} failed; see {bench.log.name}")
    still = {name: bench.repeat(tool, lambda _n, b=bases[name]: b)
             for name, tool in tools.items()}
    for base in bases.values():  # the no-change runs left the bases as they were
        subprocess.run(["cp", "-a", base, base + ".before"], check=True)
    changed, flagged = _change_flags(bench)
    after = {name: bench.repeat(tool, bench.copy_of(bases[name] + ".before"))
             for name, tool in tools.items()}
    held = subprocess.run(["mbox-ids", "-d", bases["pipeline"] + ".before.copy"],
                          env=bench.env, capture_output=True, check=True).stdout
    if held.count(b'\\\\Flagged"') != flagged:
        raise SystemExit(f"bench: the server has {flagged} messages flagged, the "
                         f"backup {held.count(b'Flagged')}")
    rows = ["| run | pipeline | mbsync |", "|---|---:|---:|"]
    rows.append("| no change | " + " | ".join(
        f"{median([r.seconds for r in still[name]]):.2f} s" for name in tools) + " |")
    rows.append(f"| {changed} flags changed (1%) | " + " | ".join(
        f"{median([r.seconds for r in after[name]]):.2f} s "
        f"({median([r.seconds for r in after[name]]) / median([r.seconds for r in still[name]]):.2f}x)"  # noqa: E501
        for name in tools) + " |")
    return "\n".join([
        "## Flags follow the server (issue 16)", "",
        f"{versions}; {SPEC.messages} messages, {size / 1e6:.0f} MB, median of "
        f"{bench.runs} runs each, every run from the same copy of the backup.", "",
        *rows, "",
        "- pipeline: `imap-list --all --since DIR | mbox-ids --missing -d DIR | imap-fetch "
        "| mbox-merge -d DIR`; after the change one UID FETCH (CHANGEDSINCE) per folder "
        "whose HIGHESTMODSEQ moved, then mbox-merge writes the flags into the files (the "
        "flag lines rewritten in place, in the room the writer left)",
        "- mbsync: `Sync Pull` into a maildir, flags renamed into file names", ""])


def _change_flags(bench):
    """Toggle \\Flagged on one message in SHARE of each folder, from another IMAP
    client; (how many changed, how many are flagged now)."""
    rng = random.Random(SPEC.seed)
    changed = flagged = 0
    with bench.server.client(bench.user) as client:
        for flags, _delimiter, name in client.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(flags):
                continue
            client.select_folder(name)
            uids = client.search("ALL")
            chosen = rng.sample(uids, len(uids) // SHARE) if uids else []
            was = set(client.search("FLAGGED"))
            on = [uid for uid in chosen if uid not in was]
            off = [uid for uid in chosen if uid in was]
            if on:
                client.add_flags(on, [b"\\Flagged"], silent=True)
            if off:
                client.remove_flags(off, [b"\\Flagged"], silent=True)
            changed += len(chosen)
            flagged += len(client.search("FLAGGED"))
    return changed, flagged


GROUPS = {"flags": flags_group}
