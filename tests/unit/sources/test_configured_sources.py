"""An API or file source on makes an empty or missing inbox a normal set-up (D107)."""

from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.extract.inbox import require_inbox
from dagster_project.lib.sources import configured_sources

MANGO = {"VORONKA_MANGO_API_KEY": "k", "VORONKA_MANGO_API_SALT": "s"}


def test_configured_sources_names_the_sources_that_are_on():
    assert configured_sources({}) == []
    assert configured_sources(MANGO) == ["mango"]


def test_a_missing_inbox_fails_only_when_no_other_source_is_on(tmp_path, monkeypatch):
    missing = Path(tmp_path) / "no-inbox"
    for name in list(MANGO):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(dg.Failure, match="does not exist"):
        require_inbox(missing)
    for name, value in MANGO.items():
        monkeypatch.setenv(name, value)
    require_inbox(missing)  # Mango is on: nothing to refuse
