"""Data-quality checks: Great Expectations suites as Dagster asset checks."""

from dagster_project.defs.quality.checks import raw_asset_checks

__all__ = ["raw_asset_checks"]
