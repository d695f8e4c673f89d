"""What people read, in Russian or English (setting `VORONKA_LANGUAGE`, D106).

One table of labels for the KPI report (lib/kpi_report.py) and the finance workbook's headers
(lib/exports.py). Definitions follow docs/kpi-definitions.md; both languages have every key of the
report (tests/unit/test_text.py).
"""

from __future__ import annotations

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Voronka KPI report",
        "period": "Month",
        "trend": "trend",
        "as_of": "as of",
        "source": "Source",
        "measure": "Measure",
        "rub": "RUB",
        "deals": "deals",
        "calls": "calls",
        "clients": "clients",
        "hour": "hour",
        "offered": "Offered",
        "missed": "Missed",
        "callbacks": "Called back within 1 h",
        "fact": "Fact",
        "norm": "Plan (norm)",
        "base": "Base",
        "bands_of_month": "Bands of the month",
        "phase.potential": "Potential",
        "phase.developing": "Developing",
        "phase.developed": "Developed",
        "phase.sleeping": "Sleeping",
        "phase.lost": "Lost",
        "chart.company": "The company this month and the month before",
        "chart.revenue_trend": "Revenue and deals won, by month",
        "chart.plan_vs_fact": "Revenue per manager: fact against plan",
        "chart.bands": "Plan completion per manager and KPI, in the bonus scheme's bands",
        "chart.funnel": "Funnel of the month's deals, by stage",
        "chart.calls_heatmap": "Service level by day and hour",
        "chart.missed_callbacks": "Missed calls and callbacks, by month",
        "chart.nps_csat": "NPS and CSAT, by month",
        "chart.churn_lifecycle": "Clients by lifecycle phase, and churn, by month",
        "chart.clv_cac": "CLV and CAC by acquisition channel",
        "chart.statements": "Bonus statements",
        "def.company": (
            "Every measure recomputed over all events of the month, whoever they are credited "
            "to. Win rate = deals won / (won + lost); churn rate of the whole base; service "
            "level = inbound calls answered within 20 s / inbound calls; CAC = marketing spend / "
            "new clients."
        ),
        "def.revenue": (
            "Revenue = sum of the amounts of the deals won (status won, closed_at in the month, "
            "business time zone), RUB; deals won counted the same way."
        ),
        "def.plan_vs_fact": (
            "Fact = the manager's revenue of the month; plan = the norm of the manager's revenue "
            "plan row, base its base. KPI % = 100 × (fact − base) / (norm − base), not clamped."
        ),
        "def.bands": (
            "Each cell: KPI % = 100 × (fact − base) / (norm − base) of a plan row and the premium "
            "coefficient of the band it falls in (lower ≤ KPI % < upper). Red: no premium; "
            "amber: reduced; green: full; dark green: above full. n/a: no KPI % (the line says "
            "why; coefficient 0)."
        ),
        "def.funnel": (
            "Deals created in the month (the cohort), all managers: a deal reached a stage when it "
            "entered it or a later one, or was won (a skipped stage counts as passed). The "
            "percentage is the conversion from the stage before."
        ),
        "def.service_level": (
            "Service level = inbound calls answered with ring time ≤ 20 s / inbound calls "
            "(offered), all lines, per date and hour of the call's start (business time zone). "
            "Empty: no inbound call in that hour."
        ),
        "def.missed_callbacks": (
            "Offered = inbound calls; missed = offered − answered; called back = missed inbound "
            "calls followed within 60 minutes by an outbound call to the same phone (any line, "
            "any manager)."
        ),
        "def.nps_csat": (
            "NPS = 100 × (promoters − detractors) / responses of type nps (promoters 9–10, "
            "detractors 0–6), −100…100; CSAT = mean score of the csat responses (1–5)."
        ),
        "def.churn_lifecycle": (
            "A client is active with a won deal in the last 180 days. Churn rate = clients active "
            "at the start of the month and not at its end / clients active at the start. Phases "
            "at the month's end: potential (a deal, none won), developing (active, < 3 won), "
            "developed (active, ≥ 3 won), sleeping (not active, last won deal within 360 days), "
            "lost."
        ),
        "def.clv_cac": (
            "CAC = marketing spend of the month and channel / new clients (first won deal in the "
            "month). CLV = average check × purchases per client (12 months ending with the "
            "month) × expected lifetime in years (1 / annual churn, at most 10)."
        ),
        "def.statements": (
            "Statement = sum of the manager's bonus lines of the month; line = pool × weight × "
            "premium coefficient, rounded half-up to kopecks. Closed months are frozen; later "
            "differences are in finance.bonus_adjustments."
        ),
        "revenue": "Revenue, RUB",
        "deals_won": "Deals won",
        "win_rate": "Win rate",
        "nps": "NPS",
        "csat_avg": "CSAT",
        "churn_rate": "Churn rate",
        "service_level": "Service level",
        "cac": "CAC, RUB",
    },
    "ru": {
        "title": "Воронка: отчёт по KPI",
        "period": "Месяц",
        "trend": "динамика",
        "as_of": "данные на",
        "source": "Источник",
        "measure": "Показатель",
        "rub": "руб.",
        "deals": "сделки",
        "calls": "звонки",
        "clients": "клиенты",
        "hour": "час",
        "offered": "Поступило",
        "missed": "Пропущено",
        "callbacks": "Перезвонили в течение часа",
        "fact": "Факт",
        "norm": "План (норма)",
        "base": "База",
        "bands_of_month": "Диапазоны месяца",
        "phase.potential": "Потенциальные",
        "phase.developing": "Развивающиеся",
        "phase.developed": "Развитые",
        "phase.sleeping": "Спящие",
        "phase.lost": "Потерянные",
        "chart.company": "Компания: этот месяц и предыдущий",
        "chart.revenue_trend": "Выручка и выигранные сделки по месяцам",
        "chart.plan_vs_fact": "Выручка менеджеров: факт и план",
        "chart.bands": "Выполнение плана по менеджерам и KPI в диапазонах премиальной схемы",
        "chart.funnel": "Воронка сделок месяца по этапам",
        "chart.calls_heatmap": "Уровень обслуживания по дням и часам",
        "chart.missed_callbacks": "Пропущенные звонки и перезвоны по месяцам",
        "chart.nps_csat": "NPS и CSAT по месяцам",
        "chart.churn_lifecycle": "Клиенты по фазам жизненного цикла и отток по месяцам",
        "chart.clv_cac": "CLV и CAC по каналам привлечения",
        "chart.statements": "Премиальные ведомости",
        "def.company": (
            "Каждый показатель пересчитан по всем событиям месяца, кому бы они ни были зачтены. "
            "Доля выигранных = выигранные / (выигранные + проигранные); отток по всей базе; "
            "уровень обслуживания = входящие, принятые за ≤ 20 с / все входящие; CAC = "
            "маркетинговые расходы / новые клиенты."
        ),
        "def.revenue": (
            "Выручка = сумма выигранных сделок (статус won, closed_at в месяце, часовой пояс "
            "компании), руб.; выигранные сделки считаются так же."
        ),
        "def.plan_vs_fact": (
            "Факт = выручка менеджера за месяц; план = норма строки плана по выручке, база — её "
            "база. KPI % = 100 × (факт − база) / (норма − база), без ограничения."
        ),
        "def.bands": (
            "В ячейке: KPI % = 100 × (факт − база) / (норма − база) строки плана и премиальный "
            "коэффициент диапазона, в который он попал (нижняя граница ≤ KPI % < верхняя). "
            "Красный: без премии; жёлтый: сниженная; зелёный: полная; тёмно-зелёный: выше "
            "полной. n/a: KPI % не определён (причина в строке; коэффициент 0)."
        ),
        "def.funnel": (
            "Сделки, созданные в месяце (когорта), все менеджеры: сделка достигла этапа, если "
            "вошла в него или в более поздний, или выиграна (пропущенный этап считается "
            "пройденным). Процент — конверсия из предыдущего этапа."
        ),
        "def.service_level": (
            "Уровень обслуживания = входящие, принятые с ожиданием ≤ 20 с / все входящие, все "
            "линии, по дате и часу начала звонка (часовой пояс компании). Пусто: входящих не было."
        ),
        "def.missed_callbacks": (
            "Поступило = входящие; пропущено = поступило − принято; перезвонили = пропущенные "
            "входящие, после которых в течение 60 минут был исходящий на тот же номер (любая "
            "линия, любой менеджер)."
        ),
        "def.nps_csat": (
            "NPS = 100 × (промоутеры − критики) / ответы типа nps (промоутеры 9–10, критики 0–6), "
            "от −100 до 100; CSAT = средняя оценка ответов csat (1–5)."
        ),
        "def.churn_lifecycle": (
            "Клиент активен, если у него есть выигранная сделка за последние 180 дней. Отток = "
            "активные на начало месяца и неактивные на конец / активные на начало. Фазы на конец "
            "месяца: потенциальные (есть сделка, выигранных нет), развивающиеся (активны, < 3 "
            "выигранных), развитые (активны, ≥ 3), спящие (неактивны, последняя выигранная "
            "сделка не раньше 360 дней назад), потерянные."
        ),
        "def.clv_cac": (
            "CAC = маркетинговые расходы месяца по каналу / новые клиенты (первая выигранная "
            "сделка в месяце). CLV = средний чек × покупок на клиента (12 месяцев по этот) × "
            "ожидаемый срок жизни в годах (1 / годовой отток, не более 10)."
        ),
        "def.statements": (
            "Ведомость = сумма премиальных строк менеджера за месяц; строка = фонд × вес × "
            "премиальный коэффициент, с округлением до копеек. Закрытые месяцы заморожены; "
            "последующие расхождения — в finance.bonus_adjustments."
        ),
        "revenue": "Выручка, руб.",
        "deals_won": "Выиграно сделок",
        "win_rate": "Доля выигранных",
        "nps": "NPS",
        "csat_avg": "CSAT",
        "churn_rate": "Отток",
        "service_level": "Уровень обслуживания",
        "cac": "CAC, руб.",
        # column headers (the report's tables and the finance workbook)
        "month": "Месяц",
        "month_affected": "Месяц начисления",
        "payable_month": "Месяц выплаты",
        "manager_id": "ID менеджера",
        "manager_name": "Менеджер",
        "team": "Команда",
        "lines": "Строк",
        "bonus_amount": "Премия, руб.",
        "period_status": "Статус периода",
        "closed_at": "Закрыт",
        "kpi_code": "KPI",
        "kpi_pct": "Выполнение, %",
        "band_lower_pct": "Диапазон от, %",
        "band_upper_pct": "Диапазон до, %",
        "premium_coefficient": "Коэффициент",
        "weight": "Вес",
        "pool_amount": "Фонд, руб.",
        "reason": "Причина",
        "detected_at": "Обнаружено",
        "paid_amount": "Выплачено, руб.",
        "recomputed_amount": "Пересчитано, руб.",
        "delta": "Разница, руб.",
        "voided_at": "Аннулировано",
    },
}
# English column headers are the column names, except these
_TEXT["en"].update(
    {
        "manager_id": "Manager id",
        "manager_name": "Manager",
        "team": "Team",
        "lines": "Lines",
        "bonus_amount": "Bonus, RUB",
        "period_status": "Period status",
    }
)


def tr(key: str, language: str) -> str:
    """The text of `key` in `language`; the key itself when there is none."""
    return _TEXT.get(language, _TEXT[DEFAULT_LANGUAGE]).get(key, key)


def header(column: str, language: str) -> str:
    """A column's header: its label in `language`, else the name in words (`month_affected` ->
    `Month affected`)."""
    label = _TEXT.get(language, {}).get(column)
    return label or column.replace("_", " ").capitalize()


def parse_language(value: str | None) -> str:
    """`ru` or `en` from a setting; ValueError naming the choices otherwise."""
    if value is None or not value.strip():
        return DEFAULT_LANGUAGE
    language = value.strip().lower()
    if language not in LANGUAGES:
        raise ValueError(f"VORONKA_LANGUAGE must be one of {', '.join(LANGUAGES)}, not {value!r}")
    return language
