"""Data-quality checks: Great Expectations suites as Dagster asset checks (see checks.py)."""
