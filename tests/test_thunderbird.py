"""mbox-merge --thunderbird: the files of a backup directory as Thunderbird's local
folders, hard links in .sbd directories, names encoded as imapbackup(1) says."""

import os

import orjson
from plumbing import run

from imapstream.commands import mbox_merge


def test_each_file_is_linked_under_its_folder_s_parts(tmp_path):
    store, top = tmp_path / "flat", tmp_path / "top"
    store.mkdir()
    top.mkdir()
    records = [{"file": f"elsewhere/{name}", "folder": folder, "delimiter": delimiter}
               for name, folder, delimiter in (
                   ("Lists.a%2Fb.mbox", "Lists.a/b", "."), ("x.%2E%2E.mbox", "x/..", "/"),
                   ("n%00ul.mbox", "n\0ul", None), ("x.%2E%2E.mbox", "ignored", None))]
    for name in {os.path.basename(record["file"]) for record in records}:
        (store / name).write_bytes(name.encode())
    (top / "Lists").write_bytes(b"Thunderbird's own")  # a parent's file stays as it is
    stdin = b"".join(orjson.dumps(r) + b"\n" for r in records) + b'{"folders":3,"failed":[]}\n'
    assert run(mbox_merge, ["-d", str(store), "--thunderbird", str(top)], stdin) == (0, b"")
    tree = {str(p.relative_to(top)): p.read_bytes() for p in top.rglob("*") if p.is_file()}
    assert tree == {"Lists": b"Thunderbird's own", "Lists.sbd/a%2Fb": b"Lists.a%2Fb.mbox",
                    "x": b"", "x.sbd/%2E%2E": b"x.%2E%2E.mbox", "n%00ul": b"n%00ul.mbox"}
    (store / "n%00ul.mbox").unlink()
    (store / "n%00ul.mbox").write_bytes(b"a new file")
    assert run(mbox_merge, ["-d", str(store), "--thunderbird", str(top)], stdin)[0] == 0
    assert os.path.samefile(top / "n%00ul", store / "n%00ul.mbox")
