"""Quoting for SQL text built in Python: one rule for identifiers, one for string literals.

DuckDB and PostgreSQL agree on both: an identifier in double quotes with a `"` doubled, a string
in single quotes with a `'` doubled (standard SQL, no backslash escapes).
"""


def identifier(name: str) -> str:
    """`name` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """`value` (as text) as a single-quoted SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"
