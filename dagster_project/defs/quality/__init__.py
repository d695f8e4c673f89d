"""Data-quality checks: Great Expectations suites as Dagster asset checks."""

from dagster_project.defs.quality.checks import layer_asset_checks, raw_asset_checks

__all__ = ["layer_asset_checks", "raw_asset_checks"]
