"""The asset graph against its committed snapshot, ``tests/snapshots/asset_graph.txt`` (D124).

Every asset's key, group and dependencies, and every asset check (blocking or not), as the one
definitions builder builds them with no API or file source switched on. A change to the graph
(an asset, a dbt model or test, a suite file) shows as a diff of the snapshot in review.

Regenerate after an intended change, then read the diff before committing it:

    make snapshot
    # = VORONKA_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/integration/test_asset_graph.py
"""

import os
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.integration

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "asset_graph.txt"
UPDATE_ENV = "VORONKA_UPDATE_SNAPSHOT"
# the settings that switch the API and file sources on (README, "Connecting ...")
SOURCE_WORDS = ("AMOCRM", "BITRIX24", "MANGO", "CDR", "FORMS")

HEADER = """\
# The asset graph of Voronka: assets (key, group, dependencies) and their checks, as
# dagster_project/defs/build.py builds them with no API or file source switched on.
# GENERATED: do not edit by hand. tests/integration/test_asset_graph.py compares it with the
# current graph. After adding or changing an asset, a dbt model or test, or a suite file (or
# after a rebase onto someone who did: a conflict here is resolved by regenerating), run
#     make snapshot
# and review the diff before committing it.
#
# <asset key>  [group <group>]  (external: not materialized by any asset)
#   <- <upstream asset key>
#   check <check name>  (blocking)
"""


def graph_text(defs: dg.Definitions) -> str:
    """The snapshot text of a set of definitions (sorted, so that it is stable)."""
    graph = defs.get_repository_def().asset_graph
    lines = [HEADER.rstrip("\n")]
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        external = "" if node.is_executable else "  (external)"
        lines.append(f"{key.to_user_string()}  [group {node.group_name}]{external}")
        lines += sorted(f"  <- {parent.to_user_string()}" for parent in node.parent_keys)
        for check_key in sorted(node.check_keys, key=lambda k: k.name):
            blocking = "  (blocking)" if graph.get(check_key).blocking else ""
            lines.append(f"  check {check_key.name}{blocking}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def current() -> str:
    from dagster_project.defs.build import build_definitions

    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("VORONKA_") and any(word in name for word in SOURCE_WORDS):
                patch.delenv(name)
        return graph_text(build_definitions())


def test_the_asset_graph_matches_its_snapshot(current: str):
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot: run `make snapshot` to write {SNAPSHOT}"
    expected = SNAPSHOT.read_text(encoding="utf-8")
    assert current == expected, (
        "the asset graph differs from tests/snapshots/asset_graph.txt: if the change is"
        " intended, run `make snapshot` and review the diff"
    )


def test_the_snapshot_shows_what_a_graph_change_would_change():
    """The text carries keys, groups, dependencies, checks and blocking: a graph that differs
    in any of them gives another text."""

    @dg.asset(key=["inbox", "calls"], group_name="inbox")
    def calls() -> None: ...

    @dg.asset(key=["core", "fct_calls"], group_name="core", deps=[calls])
    def fct_calls() -> None: ...

    @dg.asset_check(asset=calls, blocking=True)
    def ge_raw_calls() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    text = graph_text(dg.Definitions(assets=[calls, fct_calls], asset_checks=[ge_raw_calls]))
    assert text.endswith(
        "core/fct_calls  [group core]\n"
        "  <- inbox/calls\n"
        "inbox/calls  [group inbox]\n"
        "  check ge_raw_calls  (blocking)\n"
    )
