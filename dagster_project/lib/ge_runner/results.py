"""The results of a validation: one :class:`SuiteResult` per suite and batch, one
:class:`ExpectationResult` per expectation (plain data, JSON-serialisable)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dagster_project.lib.ge_runner.suites import SEVERITIES


@dataclass
class ExpectationResult:
    """The outcome of one expectation on one batch.

    Attributes:
        type: the expectation type, e.g. ``expect_column_values_to_be_between``.
        column: the column it applies to (``column_A,column_B`` for pairs), None for the table.
        severity: ``error`` or ``warn``.
        success: True when the expectation held.
        unexpected_count: offending rows (column expectations only).
        unexpected_percent: offending rows in percent of the rows it was evaluated on.
        element_count: rows the expectation was evaluated on (after its ``row_condition``).
        observed_value: GE's observed value for table-level expectations (row count, columns).
        details: further facts, e.g. ``{"missing": [...], "unexpected": [...]}`` for column sets.
        sample: up to ten offending rows: key columns, ``_source_file``, ``_source_line`` and the
            values (raw text and typed) of the expectation's columns.
        notes: why the expectation exists (``meta.notes`` of the suite).
        exception: the error GE raised while evaluating it, if any (the expectation failed).
        query: the query-defined batch it ran on (``meta.query``); None for the suite's table.
    """

    type: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    element_count: int | None = None
    observed_value: Any = None
    details: dict[str, Any] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""
    exception: str | None = None
    query: str | None = None


@dataclass
class SuiteResult:
    """The outcome of one suite on one batch.

    Attributes:
        suite_name: e.g. ``raw.calls``.
        success: no ``error`` expectation failed.
        rows_validated: rows of the batch (0 when nothing was validated).
        chunks: DataFrames the batch was validated in.
        as_of: the ``as_of`` parameter used, ISO 8601, naive UTC.
        note: why nothing or something unusual was validated (empty when unremarkable).
        expectations: one result per expectation of the suite, in suite order.
        duration_seconds: wall time of reading and validating.
        skipped: nothing was validated because the table does not exist (yet) in a layer that
            tolerates it (see :func:`validate_layer_table`); ``note`` says why.
        batch_ids: the loaded batches (``_batch_id``) this result validated, for
            :func:`record_validated` (empty for ``full`` batches).
        fingerprint: the digest of what was validated (``reuse.fingerprint``, D330), stored with
            the result by the check; None when the result may not be given again.
        reused: why this result is an earlier validation's, given again (D330); empty when it
            was validated now.
    """

    suite_name: str
    success: bool
    rows_validated: int = 0
    chunks: int = 0
    as_of: str | None = None
    note: str = ""
    expectations: list[ExpectationResult] = field(default_factory=list)
    duration_seconds: float = 0.0
    skipped: bool = False
    batch_ids: list[str] = field(default_factory=list)
    fingerprint: str | None = None
    reused: str = ""

    @property
    def layer(self) -> str:
        return self.suite_name.partition(".")[0]

    @property
    def failed(self) -> list[ExpectationResult]:
        """Expectations that did not hold, errors first."""
        failed = [e for e in self.expectations if not e.success]
        return sorted(failed, key=lambda e: SEVERITIES.index(e.severity))

    @property
    def failed_errors(self) -> list[ExpectationResult]:
        return [e for e in self.failed if e.severity == "error"]

    @property
    def failed_warnings(self) -> list[ExpectationResult]:
        return [e for e in self.failed if e.severity == "warn"]

    @property
    def severity(self) -> str | None:
        """``error`` if the suite failed, ``warn`` if only warnings did, else None."""
        if self.failed_errors or not self.success:
            return "error"
        return "warn" if self.failed_warnings else None

    def summary(self) -> str:
        """One line for logs and the check's description."""
        if self.skipped:
            return f"{self.suite_name}: skipped ({self.note})"
        if not self.expectations:
            return f"{self.suite_name}: nothing validated ({self.note})"
        # the same verdict as the asset check's badge (defs/quality/checks.py): a failed `warn`
        # expectation fails the check with severity WARN, so the text must not say "passed"
        verdict = {None: "passed", "warn": "FAILED (warnings only)", "error": "FAILED"}[
            self.severity
        ]
        text = (
            f"{self.suite_name} {verdict} on {self.rows_validated:,} rows: "
            f"{len(self.failed_errors)} error and {len(self.failed_warnings)} warn expectations "
            f"failed of {len(self.expectations)}"
        )
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of the whole result."""
        return asdict(self)
