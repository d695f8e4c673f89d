"""What dbt puts in the Jinja context, for sqlfluff's jinja templater (`make lint`, D140).

sqlfluff's `apply_dbt_builtins` gives `ref`, `source`, `var`, `this`, `config` and
`is_incremental`; the project's macros also read `dbt.*`, `adapter.*`, `modules.*`, `target`,
`local_md5` and `tojson`, defined here as dbt-duckdb renders them. `var()` answers the defaults of
`dbt_project.yml` (an `env_var(...)` default as dbt reads it with the variable unset), so that
a macro computing with a var (the business time zone's fixed offset) renders as in a real run.
`execute` is False (`.sqlfluff`): the macros that query the warehouse at run time take their
compile-time branch. Nothing here connects to a warehouse: linting needs none.
"""

import hashlib
import json
import re
from pathlib import Path

import yaml
from jinja2 import pass_context

from . import adapter, dbt, modules  # noqa: F401  (read by the templater as context names)

_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project.yml"
_ENV_VAR_DEFAULT = re.compile(r"""\{\{\s*env_var\(\s*'[^']*'\s*,\s*'([^']*)'\s*\)\s*\}\}""")


def _project_vars() -> dict:
    values = yaml.safe_load(_PROJECT.read_text(encoding="utf-8")).get("vars") or {}
    for name, value in values.items():
        if isinstance(value, str) and (match := _ENV_VAR_DEFAULT.fullmatch(value.strip())):
            values[name] = match.group(1)
    return values


_VARS = _project_vars()


def var(name, default=None):
    """dbt's `var()`: the project's default, else the call's default."""
    return _VARS.get(name, default)


class _Target:
    name = "dev"
    type = "duckdb"
    schema = "main"
    database = "warehouse"


target = _Target()


def local_md5(value):
    """dbt's `local_md5()`: the md5 of a string, in hex."""
    return hashlib.md5(value.encode("utf-8")).hexdigest()


def tojson(value, default=None, sort_keys=False):
    """dbt's `tojson()`: a value as JSON, `default` when it cannot be."""
    try:
        return json.dumps(value, sort_keys=sort_keys)
    except (TypeError, ValueError):
        return default


@pass_context
def run_query(context, sql):
    """Never reached while `execute` is False; refuse clearly if a macro calls it anyway."""
    raise RuntimeError("run_query() called while linting: guard the call with `execute`")


__all__ = ["adapter", "dbt", "local_md5", "modules", "run_query", "target", "tojson", "var"]
