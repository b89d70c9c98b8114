"""README.md and docs/ agree with the code: the options, the exit statuses, the layers, links and names.

The code blocks of these pages run in tests/test_readme.py; here the text itself is checked.
"""

import configparser
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nst_tf.ground.statuses import EXIT_STATUSES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS, ROOT / "pretrained-model" / "README.md"]
FENCE = re.compile(r"^```\w*\n.*?^```$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _name(page):
    return page.relative_to(ROOT).as_posix()


def _prose(page):
    """The page without its fenced blocks (which tests/test_readme.py runs)."""
    return FENCE.sub("", page.read_text())


def _section(page, heading):
    """The text under ``heading`` (a line such as "## Exit statuses") up to the next heading of its level or above."""
    text = page.read_text()
    level = heading.split(" ")[0]
    start = text.index(f"\n{heading}\n")
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", text[start + 1 :], re.MULTILINE)][1:]
    return text[start : start + 1 + ends[0]] if ends else text[start:]


def _first_cells(text):
    """The first cell of each table row of ``text`` ("\\|" inside a cell is not a column)."""
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [re.split(r"(?<!\\)\|", row)[1] for row in rows]


def _anchors(page):
    """The anchors GitHub gives ``page``'s headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", _prose(page), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_the_readme_is_a_page_of_at_most_200_lines_that_links_every_docs_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    linked = {(README.parent / target.split("#")[0]).resolve() for target in LINK.findall(text)}
    assert DOCS and set(DOCS) <= linked, sorted(_name(page) for page in set(DOCS) - linked)


def test_the_readme_gives_the_test_command_ci_runs():
    line = 'pip install -e ".[test]" && pytest'
    assert f"\n{line}\n" in README.read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"# README.md: {line}\n" in ci  # .ci/run names the line it runs, in two steps
    assert '\npip install -e ".[test]"\n' in ci and "\npytest\n" in ci


@pytest.mark.parametrize(
    "module, heading",
    [("nst_tf", None), ("nst_tf.download", "## `python -m nst_tf.download`")],
)
def test_the_command_reference_lists_exactly_the_options_help_lists(module, heading):
    help_ = subprocess.run([sys.executable, "-m", module, "-h"], capture_output=True, text=True, cwd=ROOT, check=True)
    # Each option's names, short ones and aliases too, from the lines that begin with them (two spaces in).
    lines = re.findall(r"^  (-.*)$", help_.stdout, re.MULTILINE)
    options = {part.split()[0] for line in lines for part in line.split("  ")[0].split(", ")} - {"-h", "--help"}
    reference = ROOT / "docs" / "command.md"
    download = _section(reference, "## `python -m nst_tf.download`")
    text = download if heading else reference.read_text().replace(download, "")
    documented = {name for cell in _first_cells(text) for name in re.findall(r"`(--?[a-z][\w-]*)", cell)}
    assert len(options) > 5 and documented == options, (sorted(options - documented), sorted(documented - options))


def test_every_exit_status_is_documented_and_no_other():
    section = _section(ROOT / "docs" / "statuses-and-files.md", "## Exit statuses")
    documented = {int(status) for cell in _first_cells(section) for status in re.findall(r"^ `(\d+)` $", cell)}
    assert documented == set(EXIT_STATUSES)


def test_the_layout_names_the_layers_of_the_import_contract_and_every_module_of_each():
    contract = configparser.ConfigParser()
    contract.read(ROOT / "setup.cfg")
    layers = contract["importlinter:contract:layers"]["layers"].split()
    entry_points = ("__main__", "download", "web", "train")  # one row
    layers = [layer for layer in layers if layer != "|" and layer not in entry_points]
    rows = [line for line in _section(ROOT / "docs" / "contributing.md", "## Layout").splitlines() if line[:2] == "| "]
    named = {re.split(r"(?<!\\)\|", row)[1].strip().strip("`"): re.split(r"(?<!\\)\|", row)[3] for row in rows[1:]}
    assert list(named) == ["entry points", *layers]
    folders = {layer: [ROOT / "nst_tf" / layer] for layer in layers}
    folders["entry points"] = [ROOT / "nst_tf" / name for name in ("download", "web", "train", "__main__.py")]
    for layer, cell in named.items():
        modules = {
            path.name for place in folders[layer] for path in ([place] if place.is_file() else place.rglob("*.py"))
        }
        mentioned = set(re.findall(r"`(?:[\w/]*/)?(\w+\.py)`", cell))
        modules -= {"__init__.py"}
        assert mentioned == modules, (layer, sorted(modules - mentioned), sorted(mentioned - modules))


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_links_reach_a_file_and_a_heading_there(page):
    for target in LINK.findall(_prose(page)):
        if re.match(r"\w+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{_name(page)}: {target}"
        if anchor:
            assert anchor in _anchors(linked), f"{_name(page)}: {target}"


def _resolve(dotted):
    """The object a dotted name such as ``nst_tf.objective.terms.TemporalTerm`` names; raises if there is none."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as error:
            if not (error.name and f"{'.'.join(parts[:cut])}.".startswith(f"{error.name}.")):
                raise  # a module that is there failed to import
            continue
        for part in parts[cut:]:
            found = getattr(found, part)
        return found
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_the_names_and_paths_a_page_gives_exist(page):
    text = _prose(page)
    for dotted in set(re.findall(r"`(nst_tf(?:\.\w+)+)", text)):
        assert _resolve(dotted) is not None, dotted
    for path in set(re.findall(r"`((?:nst_tf|notebooks|tests|benchmarks|\.ci)/[\w/.-]*)`", text)):
        if "/." not in path:  # what a run writes (benchmarks/.cache/) is not in the repository
            assert (ROOT / path).exists(), f"{_name(page)}: {path}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_the_text_names_the_course_and_the_paper_not_seed_or_issue_numbers(page):
    assert not re.findall(r".{0,30}(?:seed 0|issue #|#\d).{0,30}", page.read_text(), re.IGNORECASE)
