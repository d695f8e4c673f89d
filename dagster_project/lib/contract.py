"""The inbox contract v1.1 (``docs/inbox-contract.md``) as data.

One description of every inbox entity: its folder, key, kind and typed columns. The loader
derives its validation SQL from it, the demo generator its headers, the raw-layer suites their
column sets. Changing a column here is changing the contract: bump ``CONTRACT_VERSION``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# v1.1: the optional `deleted_at` of clients, deals, activities and requests (D85)
CONTRACT_VERSION = "1.1"

ColumnType = Literal[
    "text",  # any string
    "id",  # a text id, kept as given
    "timestamp",  # ISO 8601, with or without offset (naive = business time zone)
    "date",  # YYYY-MM-DD
    "period",  # YYYY-MM
    "decimal",  # decimal(18, scale); formats, separators and bounds: lib/parsing.py
    "integer",  # whole number (bigint)
    "boolean",  # true/false, 1/0, yes/no, да/нет (lib/parsing.py)
    "enum",  # one of `values`, case-insensitive
    "phone",  # any phone format; normalised in staging
]

EntityKind = Literal["mutable", "event", "reference"]


@dataclass(frozen=True)
class Column:
    """One column of an inbox entity."""

    name: str
    type: ColumnType = "text"
    required: bool = False
    values: tuple[str, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    default: str | None = None
    scale: int = 2  # decimals: digits after the point of decimal(18, scale) in staging


@dataclass(frozen=True)
class Entity:
    """One inbox entity: a folder of CSV files loaded into ``raw.<name>``."""

    name: str
    key: tuple[str, ...]
    kind: EntityKind
    columns: tuple[Column, ...]
    optional: bool = False
    # (column, referenced entity, referenced column): rows whose value is not found go to the
    # quarantine with reason `unknown_<column>` (re-checked on every load, see the loader).
    references: tuple[tuple[str, str, str], ...] = ()
    description: str = ""
    extra_rules: tuple[tuple[str, str], ...] = field(default=())

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, type_: ColumnType = "text", required: bool = False, **kw) -> Column:
    return Column(name=name, type=type_, required=required, **kw)


ROLES = ("sales", "account", "support")
DEAL_STATUSES = ("open", "won", "lost")
STAGE_TYPES = ("open", "won", "lost")
ACTIVITY_TYPES = ("call", "meeting", "email", "demo", "proposal", "task")
OUTCOMES = ("positive", "negative", "neutral")
REQUEST_CHANNELS = ("phone", "email", "chat", "web")
CALL_DIRECTIONS = ("inbound", "outbound")
CALL_STATUSES = ("answered", "missed", "busy", "failed", "no_answer")
SURVEY_TYPES = ("nps", "csat")
CLIENT_TYPES = ("company", "person")

ENTITIES: tuple[Entity, ...] = (
    Entity(
        name="managers",
        key=("manager_id",),
        kind="mutable",
        description="Sales, account and support staff; every version kept (team/role history).",
        columns=(
            _c("manager_id", "id", True),
            _c("full_name", "text", True),
            _c("team", "text", True),
            _c("role", "enum", values=ROLES, default="sales"),
            _c("extension", "text"),
            _c("email", "text"),
            _c("hired_on", "date"),
            _c("left_on", "date"),
            _c("updated_at", "timestamp", True),
        ),
    ),
    Entity(
        name="clients",
        key=("client_id",),
        kind="mutable",
        description="Companies and people the sales department sells to.",
        columns=(
            _c("client_id", "id", True),
            _c("client_type", "enum", values=CLIENT_TYPES),
            _c("name", "text"),
            _c("phone", "phone"),
            _c("email", "text"),
            _c("segment", "text"),
            _c("acquisition_channel", "text"),
            _c("created_at", "timestamp", True),
            _c("updated_at", "timestamp", True),
            # v1.1: a version with it set says the record was deleted in its source (D85)
            _c("deleted_at", "timestamp"),
        ),
    ),
    Entity(
        name="pipeline_stages",
        key=("pipeline", "stage"),
        kind="reference",
        description="The stages of every sales pipeline, in order.",
        columns=(
            _c("pipeline", "text", True),
            _c("stage", "text", True),
            _c("stage_order", "integer", True, min_value=1),
            _c("stage_type", "enum", True, values=STAGE_TYPES),
        ),
    ),
    Entity(
        name="deals",
        key=("deal_id",),
        kind="mutable",
        description="Deals (сделки) with their current stage, status and responsible manager.",
        references=(("client_id", "clients", "client_id"),),
        columns=(
            _c("deal_id", "id", True),
            _c("client_id", "id", True),
            _c("manager_id", "id", True),
            _c("pipeline", "text", True),
            _c("stage", "text", True),
            _c("status", "enum", True, values=DEAL_STATUSES),
            _c("amount", "decimal", True, min_value=0),
            _c("currency", "text", default="RUB"),
            _c("channel", "text"),
            _c("created_at", "timestamp", True),
            _c("closed_at", "timestamp"),
            _c("loss_reason", "text"),
            _c("updated_at", "timestamp", True),
            # v1.1: a version with it set says the record was deleted in its source (D85)
            _c("deleted_at", "timestamp"),
        ),
        extra_rules=(
            (
                "closed_at_required_when_closed",
                "lower(status) in ('won', 'lost') and closed_at is null",
            ),
            # kpi-definitions: other currencies are converted with a rate table when present,
            # otherwise quarantined; the inbox has no rate table yet (docs/decisions.md D10)
            ("unconverted_currency", "currency is not null and upper(currency) <> 'RUB'"),
        ),
    ),
    Entity(
        name="deal_stage_changes",
        key=("change_id",),
        kind="event",
        description="Every move of a deal from one stage to another.",
        columns=(
            _c("change_id", "id", True),
            _c("deal_id", "id", True),
            _c("from_stage", "text"),
            _c("to_stage", "text", True),
            _c("changed_at", "timestamp", True),
            _c("manager_id", "id"),
        ),
    ),
    Entity(
        name="activities",
        key=("activity_id",),
        kind="mutable",
        description="Tasks, meetings, e-mails, demos and proposals logged in the CRM.",
        columns=(
            _c("activity_id", "id", True),
            _c("activity_type", "enum", True, values=ACTIVITY_TYPES),
            _c("manager_id", "id", True),
            _c("deal_id", "id"),
            _c("client_id", "id"),
            _c("created_at", "timestamp", True),
            _c("due_at", "timestamp"),
            _c("completed_at", "timestamp"),
            _c("outcome", "enum", values=OUTCOMES),
            _c("updated_at", "timestamp", True),
            # v1.1: a version with it set says the record was deleted in its source (D85)
            _c("deleted_at", "timestamp"),
        ),
    ),
    Entity(
        name="calls",
        key=("call_id",),
        kind="event",
        description="Call records of the telephony (CDR), inbound and outbound.",
        columns=(
            _c("call_id", "id", True),
            _c("started_at", "timestamp", True),
            _c("direction", "enum", True, values=CALL_DIRECTIONS),
            _c("client_phone", "phone", True),
            _c("manager_extension", "text"),
            _c("line", "text"),
            _c("status", "enum", True, values=CALL_STATUSES),
            _c("ring_seconds", "integer", True, min_value=0),
            _c("talk_seconds", "integer", True, min_value=0),
        ),
    ),
    Entity(
        name="requests",
        key=("request_id",),
        kind="mutable",
        description="Inbound client requests to the service department (обращения).",
        columns=(
            _c("request_id", "id", True),
            _c("client_id", "id"),
            _c("client_phone", "phone"),
            _c("manager_id", "id"),
            _c("channel", "enum", values=REQUEST_CHANNELS),
            _c("created_at", "timestamp", True),
            _c("first_response_at", "timestamp"),
            _c("resolved_at", "timestamp"),
            _c("is_complaint", "boolean", True),
            _c("updated_at", "timestamp", True),
            # v1.1: a version with it set says the record was deleted in its source (D85)
            _c("deleted_at", "timestamp"),
        ),
    ),
    Entity(
        name="survey_responses",
        key=("response_id",),
        kind="event",
        description="NPS (0–10) and CSAT (1–5) survey responses.",
        columns=(
            _c("response_id", "id", True),
            _c("survey_type", "enum", True, values=SURVEY_TYPES),
            _c("score", "integer", True),
            _c("responded_at", "timestamp", True),
            _c("client_id", "id"),
            _c("client_phone", "phone"),
            _c("client_email", "text"),
            _c("deal_id", "id"),
            _c("request_id", "id"),
            _c("manager_id", "id"),
            _c("comment", "text"),
        ),
        extra_rules=(
            (
                "nps_score_out_of_range",
                "lower(survey_type) = 'nps' and not ({score} between 0 and 10)",
            ),
            (
                "csat_score_out_of_range",
                "lower(survey_type) = 'csat' and not ({score} between 1 and 5)",
            ),
        ),
    ),
    Entity(
        name="sales_plans",
        key=("period", "manager_id", "kpi_code"),
        kind="reference",
        description="Monthly plan per manager and KPI: base (minimum) and norm (target).",
        columns=(
            _c("period", "period", True),
            _c("manager_id", "id", True),
            _c("kpi_code", "text", True),
            _c("base", "decimal", True, scale=4),
            _c("norm", "decimal", True, scale=4),
        ),
    ),
    Entity(
        name="bonus_pools",
        key=("period", "manager_id"),
        kind="reference",
        description="The variable-pay budget of each manager for a month.",
        columns=(
            _c("period", "period", True),
            _c("manager_id", "id", True),
            _c("pool_amount", "decimal", True, min_value=0),
        ),
    ),
    Entity(
        name="marketing_spend",
        key=("period", "channel"),
        kind="reference",
        description="Marketing spend per month and lead channel.",
        columns=(
            _c("period", "period", True),
            _c("channel", "text", True),
            _c("amount", "decimal", True, min_value=0),
            _c("currency", "text", default="RUB"),
        ),
        extra_rules=(
            ("unconverted_currency", "currency is not null and upper(currency) <> 'RUB'"),
        ),
    ),
    Entity(
        name="kpi_weights",
        key=("valid_from", "role", "kpi_code"),
        kind="reference",
        optional=True,
        description="Overrides of the default KPI weights (seed), by role, valid from a month.",
        columns=(
            _c("valid_from", "period", True),
            _c("role", "enum", True, values=ROLES),
            _c("kpi_code", "text", True),
            _c("weight", "decimal", True, min_value=0, max_value=1, scale=4),
        ),
    ),
    Entity(
        name="premium_coefficients",
        key=("valid_from", "lower_pct"),
        kind="reference",
        optional=True,
        description="Overrides of the default premium-coefficient bands (seed).",
        columns=(
            _c("valid_from", "period"),
            _c("lower_pct", "decimal", True, scale=4),
            _c("upper_pct", "decimal", scale=4),
            _c("coefficient", "decimal", True, min_value=0, scale=4),
        ),
    ),
)

ENTITY_BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}

# Raw-layer metadata columns, appended to every raw and quarantine table.
META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_source_file", "varchar"),  # path relative to the inbox, posix separators
    ("_source_line", "bigint"),  # physical line in the file (the header is line 1)
    ("_loaded_at", "timestamp"),  # UTC time of the load
    ("_batch_id", "varchar"),  # one id per file load
)


def load_order() -> list[Entity]:
    """Entities in an order where every referenced entity is loaded first."""
    done: list[Entity] = []
    names: set[str] = set()
    pending = list(ENTITIES)
    while pending:
        for entity in pending:
            if all(ref[1] in names for ref in entity.references):
                done.append(entity)
                names.add(entity.name)
                pending.remove(entity)
                break
        else:  # pragma: no cover - the contract above has no cycles
            raise ValueError("cyclic references in the inbox contract")
    return done
