"""The benchmark's results as a Markdown table: medians, ratios to mbsync, peak RSS and
whether each target of issue 7 is met."""

import statistics

PROCESSES = ("imap-list", "mbox-ids", "imap-fetch", "mbox-merge")
TARGETS = {"full backup": ("ratio", 0.8), "no-change rerun": ("seconds", 0.15),
           "+1% new mail": ("ratio", 1.5)}
SCAN_TARGETS = {"mbox-ids, plain": 1000, "mbox-ids, gzip": 300}  # MB/s


def median(values):
    return statistics.median(values)


class Table:
    def __init__(self, corpus, messages, size, runs, versions, largest):
        self.corpus, self.messages, self.size = corpus, messages, size
        self.runs, self.versions, self.largest = runs, versions, largest
        self.rows, self.scans, self.notes = {}, [], []
        self.startup = 0.0

    def add(self, phase, tool, runs):
        self.rows.setdefault(phase, {})[tool] = runs

    def add_scan(self, name, runs, size):
        self.scans.append((name, runs, size))

    def note(self, text):
        self.notes.append(text)

    def rss_limit(self):
        return 64 + 2 * self.largest / (1 << 20)

    def markdown(self):
        lines = [f"# imapstream beside mbsync: {self.corpus.upper()} corpus", "",
                 f"{self.messages} messages, {self.size / 1e6:.1f} MB, largest message "
                 f"{self.largest / 1e6:.1f} MB; medians of {self.runs} runs; {self.versions}.",
                 "", *(f"- {note}" for note in self.notes), "",
                 "| measurement | mbsync s | imapbackup s | ratio | pipeline s | ratio "
                 "| target | met |", "|---|---|---|---|---|---|---|---|"]
        for phase, tools in self.rows.items():
            base = median(r.seconds for r in tools["mbsync"])
            cells = [f"{base:.3f}"]
            for tool in ("imapbackup", "pipeline"):
                seconds = median(r.seconds for r in tools[tool])
                cells += [f"{seconds:.3f}", f"{seconds / base:.2f}x"]
            kind, limit = TARGETS[phase]
            best = min(median(r.seconds for r in tools[t]) for t in ("imapbackup", "pipeline"))
            value = best / base if kind == "ratio" else best
            target = f"<= {limit}x" if kind == "ratio" else f"<= {limit} s"
            lines.append(f"| {phase} | {' | '.join(cells)} | {target} | "
                         f"{'yes' if value <= limit else 'no'} |")
        lines += ["", f"Peak RSS in MB (limit: 64 MB + 2 x largest message = "
                  f"{self.rss_limit():.0f} MB). Pipeline: " + " / ".join(PROCESSES) + ".", "",
                  "| measurement | mbsync | imapbackup (largest process) | pipeline | met |",
                  "|---|---|---|---|---|"]
        for phase, tools in self.rows.items():
            peaks = {tool: [max(r.rss[i] for r in runs) / 1024 for i in range(len(runs[0].rss))]
                     for tool, runs in tools.items()}
            ours = max(max(peaks["imapbackup"]), max(peaks["pipeline"]))
            lines.append(f"| {phase} | {peaks['mbsync'][0]:.0f} | {peaks['imapbackup'][0]:.0f} "
                         f"| {' / '.join(f'{v:.0f}' for v in peaks['pipeline'])} | "
                         f"{'yes' if ours <= self.rss_limit() else 'no'} |")
        lines += ["", "| scan without sidecar | MB | median s | MB/s | peak RSS MB | target "
                  "| met | MB/s net of start-up |", "|---|---|---|---|---|---|---|---|"]
        for name, runs, size in self.scans:
            seconds = median(r.seconds for r in runs)
            rate = size / 1e6 / seconds
            net = size / 1e6 / max(seconds - self.startup, 1e-3)
            rss = max(r.rss[0] for r in runs) / 1024
            lines.append(f"| {name} | {size / 1e6:.1f} | {seconds:.3f} | {rate:.0f} | {rss:.0f} "
                         f"| >= {SCAN_TARGETS[name]} MB/s | "
                         f"{'yes' if rate >= SCAN_TARGETS[name] else 'no'} | {net:.0f} |")
        return "\n".join(lines) + "\n"


def update_results(path, sections):
    """Replace in the file at path the sections measured now, each the text after its
    line "<!-- bench: NAME -->" up to the next such line, and keep the others (the
    sections of other runs and the notes written by hand); new ones go at the end."""
    marker = "<!-- bench: {} -->\n"
    kept, name = {}, None
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("<!-- bench: ") and line.endswith(" -->\n"):
                    name = line[len("<!-- bench: "):-len(" -->\n")]
                    kept[name] = ""
                elif name is not None:
                    kept[name] += line
    except FileNotFoundError:
        pass
    for name, text in sections.items():
        kept[name] = text if text.endswith("\n\n") else text + "\n"
    with open(path, "w") as f:
        f.write("".join(marker.format(name) + text for name, text in kept.items()))
