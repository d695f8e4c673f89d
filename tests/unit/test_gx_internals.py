"""What `lib/ge_runner/gx_engine.py` patches of GE's private internals still exists, in the shape
the patches expect (D120). A GE upgrade that renames or removes any of it fails here, not
silently in production (the patches themselves fall back to GE's own behaviour or do nothing).
"""

import inspect
from pathlib import Path

import pandas as pd

from dagster_project.lib.ge_runner import gx_engine


def _not_null_suite(column: str, row_condition: dict | None = None):
    kwargs = {"column": column}
    if row_condition:
        kwargs["row_condition"] = row_condition
    spec = {"type": "expect_column_values_to_not_be_null", "kwargs": kwargs}
    return gx_engine.gx_suite("test.not_null", Path("test.json"), [(0, {**spec, "meta": {}})])


def test_the_dataframe_fingerprint_threshold_exists():
    from great_expectations.execution_engine import pandas_execution_engine

    gx_engine.context()
    assert pandas_execution_engine.HASH_THRESHOLD == 0  # set by the context
    # ... and still read by GE's engine (setting a name GE no longer reads would do nothing)
    source = inspect.getsource(pandas_execution_engine.PandasExecutionEngine)
    assert "HASH_THRESHOLD" in source


def test_the_row_condition_filter_has_the_wrapped_signature_and_is_wrapped():
    from great_expectations.execution_engine.pandas_execution_engine import PandasExecutionEngine

    gx_engine.context()
    patched = PandasExecutionEngine._apply_row_condition_filter
    assert getattr(patched, "_voronka_memoized", False)
    cells = [c.cell_contents for c in patched.__closure__ or () if callable(c.cell_contents)]
    originals = [f for f in cells if getattr(f, "__name__", "") == "_apply_row_condition_filter"]
    assert originals, "the wrapper no longer holds GE's _apply_row_condition_filter"
    original = originals[0]
    assert list(inspect.signature(original).parameters) == [
        "self",
        "data",
        "row_condition",
        "domain_kwargs",
    ]


def test_the_memoized_filter_is_what_ge_calls_during_a_validation(monkeypatch):
    """The wrapper must be on GE's path: a validation with a row_condition fills the cache."""
    seen = []
    real_cache = gx_engine._ROW_FILTERS

    class Recording:
        def __setattr__(self, name, value):
            if isinstance(value, dict):
                seen.append(value)
            setattr(real_cache, name, value)

        def __getattr__(self, name):
            return getattr(real_cache, name)

    monkeypatch.setattr(gx_engine, "_ROW_FILTERS", Recording())
    suite = _not_null_suite("b", {"type": "nullity", "column": {"name": "a"}, "is_null": False})
    frame = pd.DataFrame({"a": ["x", None, "x"], "b": [1.0, None, None]})
    [result] = gx_engine.validate_frame(suite, frame, {"result_format": "BASIC"}, {})
    assert result.result["unexpected_count"] == 1
    assert seen and any(seen[0].values()), "GE did not go through the memoized row filter"


def test_a_validated_batch_is_in_the_batch_manager_cache_it_is_dropped_from():
    """`_forget_batch` pops the batch from `batch_manager._batch_data_cache` (or `_batch_cache`):
    those dicts must exist and hold the validated batch, else every chunk's memory stays (D63)."""
    frame = pd.DataFrame({"a": [1, 2, 3]})
    batch = gx_engine.batch_definition().get_batch(batch_parameters={"dataframe": frame})
    batch.validate(_not_null_suite("a"))
    manager = batch.data.execution_engine.batch_manager
    caches = [
        getattr(manager, name)
        for name in ("_batch_data_cache", "_batch_cache")
        if isinstance(getattr(manager, name, None), dict)
    ]
    assert caches, "GE's batch manager has neither _batch_data_cache nor _batch_cache"
    assert any(batch.id in cache for cache in caches)
    gx_engine._forget_batch(batch)
    assert not any(batch.id in cache for cache in caches)


def test_the_progress_bars_config_is_where_the_context_sets_it():
    from great_expectations.data_context.types.base import ProgressBarsConfig

    bars = gx_engine.context().variables.progress_bars
    assert isinstance(bars, ProgressBarsConfig)
    assert bars.globally is False and bars.metric_calculations is False
