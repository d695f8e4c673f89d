"""API and file sources that land in their own raw schemas (`raw_amocrm`, `raw_bitrix24`, ...).

Plain Python, no Dagster objects (the assets are in `defs/extract/`):

- `http`: one small HTTP layer on `requests`: rate limit, bounded retries with exponential
  back-off and jitter, `Retry-After`, one token refresh on 401, errors that name the endpoint
  and never carry a secret.
- `secrets`: the `Secret` type and the redaction of every known secret from logs and messages.
- `tokens`: the OAuth token store outside the repository (`VORONKA_TOKEN_STORE`, mode 0600).
- `engine`: the page loop of an API object (window, resume, high-water mark) and
  `ApiExtractor`, what the amoCRM and Bitrix24 extractors share (decision D60).
- `state`: the raw writer: one transaction per page with its rows (deduplicated) and the
  extraction state in `raw_<source>._state`, so a crash resumes from the last committed page.
- `amocrm`, `bitrix24`, `mango`: the API extractors; `cdr_csv`, `survey_forms`: file sources
  mapped by a small config file into the inbox contract's shape.

See docs/decisions.md (API sources) for why this is hand-written rather than dlt.
"""

# the sources extracted from an API (what they hold is known only by asking); the others read
# files (`cdr`, `forms`)
API_SOURCES = ("amocrm", "bitrix24", "mango")


def configured_sources(env: dict[str, str] | None = None) -> list[str]:
    """The API and file sources whose settings are in the environment (README, "Connecting
    amoCRM, Bitrix24, telephony and survey forms"). With one of them on, an empty or missing
    inbox is a normal set-up, not a mistake (D107)."""
    from dagster_project.lib.sources.amocrm import AmoCrmSettings
    from dagster_project.lib.sources.bitrix24 import Bitrix24Settings
    from dagster_project.lib.sources.cdr_csv import CdrSettings
    from dagster_project.lib.sources.mango import MangoSettings
    from dagster_project.lib.sources.survey_forms import FormsSettings

    settings = {
        "amocrm": AmoCrmSettings,
        "bitrix24": Bitrix24Settings,
        "mango": MangoSettings,
        "cdr": CdrSettings,
        "forms": FormsSettings,
    }
    return [name for name, cls in settings.items() if cls.from_env(env) is not None]
