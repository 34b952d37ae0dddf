"""README.md and docs/*.md stay true to the repository: the module map in
docs/design.md lists every module, every relative link (also in
configs/README.md) points to a file, and README links every docs page.

Plain file parsing (no TensorFlow), so these run in well under a second."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DESIGN = ROOT / "docs" / "design.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINKING = [*PAGES, ROOT / "configs" / "README.md"]
# Where the modules live: every .py file under these folders.
MODULE_FOLDERS = ("overfeat_tf", "export", "overfeat_cli")

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`]*`")
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _relative(path):
    return path.relative_to(ROOT).as_posix()


def _module_map():
    """The backticked paths of the first column of design.md's module map."""
    text = DESIGN.read_text(encoding="utf-8")
    match = re.search(r"^## Module map\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "docs/design.md has no '## Module map' section"
    paths = []
    for line in match.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or set(cells[0]) <= set("-: "):
            continue  # not a row, or the separator row
        paths += re.findall(r"`([^`]+)`", cells[0])
    assert paths, "docs/design.md's module map has no rows with a `path`"
    return paths


def _modules():
    """Every module of the package, the exporters and the command line."""
    found = set()
    for folder in MODULE_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add(_relative(path))
    return found


def test_module_map_paths_exist():
    listed = _module_map()
    missing = sorted(path for path in listed if not (ROOT / path).is_file())
    assert not missing, (
        f"docs/design.md's module map lists files that do not exist: {missing}; "
        "update or remove their rows"
    )
    twice = sorted({path for path in listed if listed.count(path) > 1})
    assert not twice, f"docs/design.md's module map lists these twice: {twice}"


def test_module_map_lists_every_module():
    unlisted = sorted(_modules() - set(_module_map()))
    assert not unlisted, (
        f"docs/design.md's module map lacks these modules: {unlisted}; "
        "add a row for each (`path` | what it holds)"
    )


def _links(page):
    """The link targets of a markdown page, outside code and comments."""
    text = page.read_text(encoding="utf-8")
    for pattern in (FENCE, COMMENT, CODE_SPAN):
        text = pattern.sub("", text)
    return LINK.findall(text)


def test_relative_links_point_to_files():
    broken = []
    for page in LINKING:
        for target in _links(page):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # http(s), mailto, or an anchor on the same page
            path = target.split("#", 1)[0]
            if not (page.parent / path).exists():
                broken.append(f"{_relative(page)}: {target}")
    assert not broken, f"links to files that do not exist: {broken}"


def test_readme_links_every_docs_page():
    linked = {target.split("#", 1)[0] for target in _links(README)}
    unlinked = [_relative(page) for page in PAGES[1:] if _relative(page) not in linked]
    assert not unlinked, f"README.md's Documentation list lacks: {unlinked}"


def test_readme_opens_with_the_ci_test_command():
    """README's first code block is what a new user runs; its test command is
    the first one .ci/run runs (the fast tier; the slow tier follows it)."""
    first = FENCE.search(README.read_text(encoding="utf-8"))
    assert first, "README.md has no code block"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    tests = [line for line in ci.splitlines() if "pytest" in line]
    assert tests, ".ci/run runs no pytest command"
    assert tests[0].strip() in first.group(0).splitlines(), (
        f"README.md's first code block lacks .ci/run's {tests[0].strip()!r}"
    )
