"""Settings, read from the environment once per call (no module-level state).

Every setting has a safe default so that `make run` works with nothing configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.postgres import PostgresTarget
from dagster_project.lib.text import DEFAULT_LANGUAGE
from dagster_project.lib.warehouse import WarehouseError, parse_target

DEFAULT_INBOX = Path("data/inbox")
DEFAULT_WAREHOUSE = Path("data/warehouse.duckdb")
DEFAULT_TIMEZONE = "Europe/Moscow"
# DuckDB of loads and dbt. With one dbt thread at large (D67) 2750MB built faster than 3GB and
# kept the run's process tree under 4 GB; at 2.5GB with two threads two marts spilled until the
# disk was full (D65). Figures: docs/performance.md, D65 and D67
DEFAULT_MEMORY_LIMIT = "2750MB"


@dataclass(frozen=True)
class Settings:
    """Where the inbox and the warehouse are, and how to read naive timestamps.

    Attributes:
        inbox: folder of the inbox contract (`VORONKA_INBOX`).
        warehouse: the warehouse (`VORONKA_WAREHOUSE`): a DuckDB file, or a PostgreSQL
            database given as a `postgresql://user@host:port/dbname?sslmode=...` URL (D181).
        business_timezone: zone of naive timestamps and of months (`VORONKA_TIMEZONE`).
        as_of: the run's as-of timestamp, ISO 8601, or None for the latest event in the data
            (`VORONKA_AS_OF`).
        memory_limit: DuckDB's memory limit for loads and transforms (`VORONKA_MEMORY_LIMIT`).
        language: of the KPI report and the finance workbook's headers, `ru` or `en`
            (`VORONKA_LANGUAGE`, default `ru`, D106); checked by `text.parse_language`.
        lock_wait: seconds a command waits for the warehouse while another holds it, 0 to
            refuse at once (`VORONKA_LOCK_WAIT`, `--wait`; D81).
    """

    inbox: Path = DEFAULT_INBOX
    warehouse: Path | PostgresTarget = DEFAULT_WAREHOUSE
    business_timezone: str = DEFAULT_TIMEZONE
    as_of: str | None = None
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    language: str = DEFAULT_LANGUAGE
    lock_wait: float = 0.0

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        env = os.environ
        values = {
            "inbox": Path(env.get("VORONKA_INBOX", DEFAULT_INBOX)),
            "warehouse": env.get("VORONKA_WAREHOUSE") or DEFAULT_WAREHOUSE,
            "business_timezone": env.get("VORONKA_TIMEZONE", DEFAULT_TIMEZONE),
            "as_of": env.get("VORONKA_AS_OF") or None,
            "memory_limit": env.get("VORONKA_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT),
            "language": env.get("VORONKA_LANGUAGE") or DEFAULT_LANGUAGE,
            "lock_wait": _seconds(env.get("VORONKA_LOCK_WAIT"), "VORONKA_LOCK_WAIT"),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["inbox"] = Path(values["inbox"])
        try:
            values["warehouse"] = parse_target(values["warehouse"])
        except WarehouseError as exc:
            raise ValueError(str(exc)) from None
        values["lock_wait"] = _seconds(values["lock_wait"], "--wait")
        return cls(**values)

    def export_env(self) -> None:
        """Publish these settings to the environment, for dbt and Dagster subprocesses."""
        os.environ["VORONKA_INBOX"] = str(self.inbox.resolve())
        os.environ["VORONKA_WAREHOUSE"] = (
            self.warehouse.url
            if isinstance(self.warehouse, PostgresTarget)
            else str(self.warehouse.resolve())
        )
        if isinstance(self.warehouse, PostgresTarget):
            # dbt's project is prepared for its target when the definitions are built (D185)
            os.environ.update(self.warehouse.dbt_env())
        os.environ["VORONKA_TIMEZONE"] = self.business_timezone
        os.environ["VORONKA_MEMORY_LIMIT"] = self.memory_limit
        os.environ["VORONKA_LANGUAGE"] = self.language
        os.environ["VORONKA_LOCK_WAIT"] = f"{self.lock_wait:g}"
        if self.as_of:
            os.environ["VORONKA_AS_OF"] = self.as_of
        else:
            os.environ.pop("VORONKA_AS_OF", None)


def _seconds(value: str | float | None, name: str) -> float:
    """A number of seconds from 0 (None: 0)."""
    if value is None or value == "":
        return 0.0
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {value!r}") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"{name} must be a number of seconds from 0, not {value!r}")
    return seconds
