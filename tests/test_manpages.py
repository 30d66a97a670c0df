"""The man pages: valid mdoc, the required sections, and every option of every command.

Each console script in pyproject.toml has man/<script>.1, and every option its --help
shows is documented there as an item of the options list (.It Fl x / .It Fl -long), and
no other option is; mdoc writes --long as "Fl -long".
"""

import importlib
import io
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAN = ROOT / "man"
PAGES = sorted(p for p in MAN.iterdir() if re.fullmatch(r"[a-z0-9-]+\.[1-9]", p.name))
SECTIONS = ["NAME", "SYNOPSIS", "DESCRIPTION", "ENVIRONMENT", "EXIT STATUS", "EXAMPLES",
            "SEE ALSO"]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = {name: target.split(":")[0]
           for name, target in PYPROJECT["project"]["scripts"].items()}


def _ids(paths):
    return [p.name for p in paths]


def test_there_are_pages():
    assert (MAN / "imapstream.7") in PAGES
    assert {f"{name}.1" for name in SCRIPTS} <= {p.name for p in PAGES}


def test_every_page_is_installed():
    installed = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert {f"man/{p.name}" for p in PAGES} == set(installed)
    for source, target in installed.items():
        name = Path(source).name
        assert target == f"share/man/man{name[-1]}/{name}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_groff_is_silent(page):
    if shutil.which("groff") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("groff not installed (CI=true: refusing to skip)", pytrace=False)
        pytest.skip("groff not installed")
    done = subprocess.run(["groff", "-mdoc", "-ww", "-z", str(page)], capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_sections_and_title(page):
    lines = page.read_text().splitlines()
    name, section = page.name.rsplit(".", 1)
    assert f".Dt {name.upper()} {section}" in lines
    assert f".Nm {name}" in lines
    headings = [line[4:].strip('"') for line in lines if line.startswith(".Sh ")]
    assert [h for h in headings if h in SECTIONS] == SECTIONS, headings
    assert len(headings) == len(set(headings))


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_source_is_tidy(page):
    for number, line in enumerate(page.read_text().splitlines(), 1):
        assert line.strip(), f"{page.name}:{number}: empty line (use .Pp or .\\\")"
        assert line == line.rstrip(), f"{page.name}:{number}: trailing white space"


def _help_options(module, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside an option string
    main = importlib.import_module(module).main
    status = main(["--help"], io.BytesIO(), io.BytesIO())
    text = capsys.readouterr().out
    assert status == 0 and text
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", text))


def _documented_options(page):
    """The Fl arguments of the .It lines: "-s" for "Fl s", "--server" for "Fl -server"."""
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith(".It "):
            found.update("-" + flag for flag in re.findall(r"\bFl (-?[\w-]+)", line))
    return found


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_option_is_documented(script, capsys, monkeypatch):
    page = MAN / f"{script}.1"
    assert page.exists(), f"{script} has no man page {page.name}"
    options = _help_options(SCRIPTS[script], capsys, monkeypatch)
    assert {"-h", "--help"} <= options
    documented = _documented_options(page)
    assert sorted(options - documented) == [], f"in --help, not in {page.name}"
    assert sorted(documented - options) == [], f"in {page.name}, not in --help"


NUMBER = re.compile(r'^\.\\" number (.+) = ([A-Z_]+) in (imapstream/\S+)\.py$', re.M)
SIZE = re.compile(r"(\d+)\\~([KMG])iB")


def _value(text):
    """The value a page's wording states: "8\\~MiB", "3 times", "1, 2 and 4 seconds",
    "1:2000"."""
    if match := SIZE.fullmatch(text):
        return int(match.group(1)) << {"K": 10, "M": 20, "G": 30}[match.group(2)]
    numbers = [int(n) for n in re.findall(r"\d+", text)]
    return tuple(numbers) if " and " in text else numbers[-1]


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_numbers_the_code_defines_are_the_code_s(page):
    """Each '.\\" number TEXT = NAME in MODULE' comment: the page says TEXT, and TEXT
    is the value of NAME in MODULE.  Every size the page states has such a comment, so
    a constant that changes and a page that is not changed with it fail here."""
    source = page.read_text()
    text = " ".join(line for line in source.splitlines() if not line.startswith('.\\"'))
    numbers = NUMBER.findall(source)
    for wording, name, module in numbers:
        assert wording in text, f"{page.name} does not say {wording}"
        value = getattr(importlib.import_module(module.replace("/", ".")), name)
        assert value == _value(wording), f"{page.name}: {wording} but {name} = {value}"
    stated = {wording for wording, _name, _module in numbers}
    assert {m.group() for m in SIZE.finditer(text)} <= stated
