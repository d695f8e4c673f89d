"""The repository links only to files it holds (issue 17, D143).

The product contracts were once read from a `spec` folder under `shared/`, beside the repository, that
a clone does not have; their copies are `docs/*.md`. A path into `shared/` in code, a YAML
description (dbt docs, the Dagster UI), a suite or a document points a reader at nothing, and so
does a relative Markdown link to a file that is not in the repository.
"""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_PARTS = {".git", ".venv", "data", "target", "logs", "dbt_packages", "__pycache__"}
TEXT_SUFFIXES = {
    ".py", ".sql", ".yml", ".yaml", ".md", ".json", ".toml", ".cfg", ".ini", ".txt", ".sh",
    ".csv", ".html",
}  # fmt: skip
TEXT_NAMES = {"Makefile", "run", "dbt", ".sqlfluff", ".sqlfluffignore", ".gitignore"}
# `shared/` as a path: after a start, a space, a quote, `(`, `/` or `.`; not `unshared/` or
# `spec/shared/` inside a longer word
SHARED_PATH = re.compile(r"(?:^|[\s`'\"(/.])shared/")
# Files allowed to name a path beside the repository, with the reason. Only a program's input
# that is not part of the product may be named so, never a document or a description.
OUTSIDE_INPUTS = {
    # issue 18's reference script ("the floor") is the yardstick of the benchmark, not Voronka's;
    # the benchmark finds it beside the repository by default and takes `--floor PATH`
    "benchmarks/run.py",
}
# [text](target): relative targets only (no scheme, no anchor-only link)
MARKDOWN_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def repository_files() -> list[Path]:
    """The files git tracks (a fresh clone's), else every file below the root."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        files = [ROOT / name for name in listed.split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        files = [p for p in ROOT.rglob("*") if p.is_file()]
    return [
        p
        for p in files
        if not SKIPPED_PARTS & set(p.relative_to(ROOT).parts)
        and (p.suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES)
        and p.is_file()
    ]


def shared_paths(text: str) -> list[str]:
    """The lines of `text` that name a path into `shared/`."""
    return [line.strip() for line in text.splitlines() if SHARED_PATH.search(line)]


def broken_links(markdown: Path) -> list[str]:
    """The relative link targets of a Markdown file that name no file or folder of the
    repository."""
    broken = []
    for target in MARKDOWN_LINK.findall(markdown.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0]
        resolved = (markdown.parent / path).resolve()
        if not resolved.exists() or ROOT not in (resolved, *resolved.parents):
            broken.append(target)
    return broken


def test_no_file_names_a_path_into_shared():
    found = {}
    for path in repository_files():
        if path == Path(__file__).resolve() or str(path.relative_to(ROOT)) in OUTSIDE_INPUTS:
            continue
        lines = shared_paths(path.read_text(encoding="utf-8", errors="replace"))
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}, f"paths into shared/, which a clone does not have: {found}"


def test_markdown_links_name_files_of_the_repository():
    found = {}
    for path in repository_files():
        if path.suffix == ".md":
            broken = broken_links(path)
            if broken:
                found[str(path.relative_to(ROOT))] = broken
    assert found == {}, f"links to files the repository does not hold: {found}"


def test_the_checks_catch_what_they_look_for(tmp_path):
    """The patterns find the old references (the contracts' folder under `shared/` in a model's YAML
    description, the house style's file there in a document) and leave ordinary words alone.
    The paths are put together here so that this file does not name them itself."""
    spec = "shared" + "/spec"
    assert shared_paths(f"description: see {spec}/kpi-definitions.md, section 3")
    assert shared_paths("the house style ([STYLE](../shared/STYLE.md))")
    assert shared_paths(f'path = "{spec}/marts.md"')
    assert not shared_paths("a lock shared by readers; unshared/ is no path; shared memory")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](https://example.org) [anchor](#x) [gone](missing.md) [up](../../../x.md)")
    assert broken_links(doc) == ["missing.md", "../../../x.md"]


def test_no_two_test_modules_share_a_name():
    """pytest imports `tests/unit` and `tests/integration` modules by their file name (those
    folders have no `__init__.py`): two files of one name stop the whole suite at collection."""
    names: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in names.items() if len(paths) > 1} == {}
