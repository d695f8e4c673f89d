"""dbt's `adapter` for the lint templater: dispatch to the DuckDB macro, as dbt-duckdb does."""

from jinja2 import pass_context


@pass_context
def dispatch(context, macro_name, macro_namespace=None):
    """The `duckdb__` implementation of a macro, else its `default__` one (dbt's search order)."""
    for prefix in ("duckdb__", "default__"):
        macro = context.get(prefix + macro_name)
        if macro is not None:
            return macro
    raise LookupError(f"no duckdb__ or default__ implementation of macro {macro_name!r}")


def quote(identifier):
    return f'"{identifier}"'


def get_relation(database=None, schema=None, identifier=None):
    return None


def get_columns_in_relation(relation):
    return []
