"""Run the Great Expectations suites of ``expectations/<layer>/<table>.json`` on DataFrames.

Plain Python, no Dagster objects: the asset checks in ``defs/quality/checks.py`` (through the
validation resource, ``lib/validation_worker.py``), ``voronka validate`` and any script call the
entry points of :mod:`.run`. Why DataFrames: GE's SQL engine does not work on DuckDB, so a batch
is read from the warehouse with SQL and validated by GE's pandas engine, at most ``chunk_rows``
rows at a time.

One job per module (import what you need from the module that holds it; nothing is re-exported):

- :mod:`.suites`: suite files, their checks and discovery; the layers and their severities.
- :mod:`.results`: :class:`~.results.SuiteResult` and :class:`~.results.ExpectationResult`.
- :mod:`.gx_engine`: the GE context, the GE suites, one DataFrame validated by GE, and every
  patch of GE's private internals (pinned by ``tests/unit/test_gx_internals.py``).
- :mod:`.chunks`: a batch validated chunk by chunk, and the chunks' results merged.
- :mod:`.reading`: reading the warehouse: the read-only connection, columns, DataFrame chunks.
- :mod:`.batches`: the loaded batches a suite has still to validate, the record of those it
  validated (D82), and the as-of of a validation.
- :mod:`.raw`: typed batches of the raw layer (the value formats of ``lib/parsing.py``).
- :mod:`.layers`: tables of staging, core, marts and finance, and query-defined batches.
- :mod:`.run`: :func:`~.run.validate_suite` (any layer) and :func:`~.run.validate_layer`.
"""
