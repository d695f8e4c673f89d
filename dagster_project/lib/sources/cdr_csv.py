"""A generic call log (CDR) CSV of any telephony provider, mapped into the inbox `calls` shape.

Files: `VORONKA_CDR_DIR` (`*.csv`, or the mapping's `files` globs); the mapping file (YAML or
JSON): `VORONKA_CDR_MAPPING`. They land in `raw_cdr.calls` with the inbox contract's `calls`
columns (text, as in `raw.calls`), the file's other columns as extra columns, and
`_source_file`, `_source_line`, `_loaded_at`, `_batch_id`, `_source` (the mapping's `name`);
rows that break the contract (after mapping) go to `raw_cdr.calls_quarantine`.

Example mapping::

    name: cloudpbx                      # recorded in _source
    files: ["*.csv"]                    # globs under VORONKA_CDR_DIR (default *.csv)
    timestamp_format: "%d.%m.%Y %H:%M:%S"   # optional; default: ISO 8601 as in the inbox
    duration_format: seconds            # or hms (h:mm:ss / mm:ss)
    columns:
      call_id: "ID звонка"              # optional; default: a hash of the row
      started_at: "Дата и время"
      direction: "Тип"
      client_phone: "Номер клиента"
      manager_extension: "Внутренний номер"
      line: "Линия"
      status: "Статус"
      ring_seconds: "Ожидание"          # or total_seconds (ring = total - talk)
      talk_seconds: "Разговор"
    values:
      direction: {"Входящий": inbound, "Исходящий": outbound}
      status: {"Отвечен": answered, "Пропущен": missed, "Занято": busy}

Unmapped values are kept lowercased: `answered` needs no map; an unknown value is quarantined
(`invalid_enum:status`) rather than guessed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dagster_project.lib.contract import ENTITY_BY_NAME
from dagster_project.lib.sources.files import (
    FileResult,
    MappedFileLoader,
    MappingError,
    column_ref,
    extras_sql,
    list_files,
    load_mapping,
    timestamp_sql,
    value_map_sql,
)

SOURCE = "cdr"
ENTITY = ENTITY_BY_NAME["calls"]
REQUIRED = ("started_at", "direction", "client_phone", "status", "talk_seconds")
KNOWN = (
    "call_id",
    "started_at",
    "direction",
    "client_phone",
    "manager_extension",
    "line",
    "status",
    "ring_seconds",
    "talk_seconds",
    "total_seconds",
)


@dataclass(frozen=True)
class CdrSettings:
    """Where the CDR files and their mapping are (`VORONKA_CDR_DIR`, `VORONKA_CDR_MAPPING`)."""

    folder: Path
    mapping_file: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> CdrSettings | None:
        env = dict(os.environ if env is None else env)
        folder = (env.get("VORONKA_CDR_DIR") or "").strip()
        mapping = (env.get("VORONKA_CDR_MAPPING") or "").strip()
        if not folder or not mapping:
            return None
        return cls(Path(folder).expanduser(), Path(mapping).expanduser())


@dataclass(frozen=True)
class CdrMapping:
    """A validated CDR mapping."""

    name: str
    files: tuple[str, ...]
    columns: dict[str, str]
    values: dict[str, dict]
    timestamp_format: str | None = None
    duration_format: str = "seconds"

    @classmethod
    def from_dict(cls, data: dict) -> CdrMapping:
        columns = data.get("columns") or {}
        if not isinstance(columns, dict):
            raise MappingError("`columns` must map contract columns to CSV header names")
        unknown = sorted(set(columns) - set(KNOWN))
        if unknown:
            raise MappingError(f"unknown column(s) in `columns`: {', '.join(unknown)}")
        missing = [c for c in REQUIRED if not columns.get(c)]
        if missing:
            raise MappingError(f"`columns` must map {', '.join(missing)}")
        if not columns.get("ring_seconds") and not columns.get("total_seconds"):
            raise MappingError("`columns` must map ring_seconds or total_seconds")
        duration_format = str(data.get("duration_format") or "seconds")
        if duration_format not in ("seconds", "hms"):
            raise MappingError("`duration_format` must be `seconds` or `hms`")
        files = data.get("files") or ["*.csv"]
        return cls(
            name=str(data.get("name") or "cdr"),
            files=tuple([files] if isinstance(files, str) else files),
            columns={k: str(v) for k, v in columns.items() if v},
            values={k: dict(v) for k, v in (data.get("values") or {}).items()},
            timestamp_format=data.get("timestamp_format"),
            duration_format=duration_format,
        )

    @classmethod
    def load(cls, path: Path) -> CdrMapping:
        try:
            return cls.from_dict(load_mapping(path))
        except MappingError as exc:
            raise MappingError(f"{Path(path).name}: {exc}") from None


def _seconds(expr: str, fmt: str) -> str:
    if fmt == "seconds":
        return expr
    # h:mm:ss or mm:ss → whole seconds, as text (the contract checks it is an integer)
    return (
        f"(case when regexp_full_match({expr}, '\\d+(:\\d{{1,2}}){{1,2}}') then "
        f"cast(list_reduce(list_transform(string_split({expr}, ':'), lambda x: x::bigint), "
        f"lambda a, b: a * 60 + b) as varchar) else {expr} end)"
    )


def mapper(mapping: CdrMapping):
    """The SQL building the contract's `calls` columns from a staged CDR file."""

    def build(by_name: dict[str, str]) -> str:
        cols = {k: column_ref(by_name, v, k) for k, v in mapping.columns.items()}
        fmt = mapping.duration_format
        talk = _seconds(cols["talk_seconds"], fmt)
        if cols.get("ring_seconds"):
            ring = _seconds(cols["ring_seconds"], fmt)
        else:
            total = _seconds(cols["total_seconds"], fmt)
            ring = (
                f"coalesce(cast(try_cast({total} as bigint) - try_cast({talk} as bigint) "
                f"as varchar), {total})"
            )
        row_text = (
            "concat_ws('|', "
            + ", ".join(
                f"coalesce({c}, '')"
                for c in (cols["started_at"], cols["client_phone"])
                + tuple(
                    cols[k]
                    for k in ("manager_extension", "direction", "talk_seconds")
                    if cols.get(k)
                )
            )
            + ")"
        )
        call_id = cols.get("call_id") or f"'{mapping.name}:' || md5({row_text})"
        used = {str(v).strip().lower() for v in mapping.columns.values()}
        reserved = set(ENTITY.column_names) | {"_row_text"}
        select = [
            f"{call_id} as call_id",
            f"{timestamp_sql(cols['started_at'], mapping.timestamp_format)} as started_at",
            f"{value_map_sql(cols['direction'], mapping.values.get('direction'))} as direction",
            f"{cols['client_phone']} as client_phone",
            f"{cols.get('manager_extension') or 'null'} as manager_extension",
            f"{cols.get('line') or 'null'} as line",
            f"{value_map_sql(cols['status'], mapping.values.get('status'))} as status",
            f"{ring} as ring_seconds",
            f"{talk} as talk_seconds",
            *extras_sql(by_name, used, reserved),
            "(rowid + 2) as _source_line",
        ]
        return f"select {', '.join(select)} from _stage"

    return build


def load_cdr(con, settings: CdrSettings, progress=None) -> list[FileResult]:
    """Load every new or changed CDR file into `raw_cdr.calls`."""
    mapping = CdrMapping.load(settings.mapping_file)
    loader = MappedFileLoader(con, SOURCE, ENTITY, settings.folder, mapping.name)
    results = []
    build = mapper(mapping)
    try:
        for path in list_files(settings.folder, list(mapping.files), (".csv",)):
            result = loader.load(path, build)
            results.append(result)
            if progress:
                progress(result)
    finally:
        loader.close()
    return results
