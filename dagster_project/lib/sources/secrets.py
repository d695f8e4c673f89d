"""Secrets: a string type that never prints itself, and redaction of known secrets.

Credentials come only from the environment (and the token store). Every secret value is
registered here when it is read, so that `redact()` can scrub it from any text (error messages,
response bodies quoted in errors) and a logging filter scrubs it from every log record,
including urllib3's debug lines, which print request paths (a Bitrix24 webhook URL carries its
secret in the path).
"""

from __future__ import annotations

import logging
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
_MIN_LENGTH = 4  # shorter values would scrub ordinary text; no real credential is this short

_lock = threading.Lock()
_known: set[str] = set()


class Secret:
    """A credential. `str()` and `repr()` show `***`; `reveal()` gives the value.

    Example:
        >>> token = Secret("abc123-token")
        >>> f"{token}"
        '***'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        register(value)

    def reveal(self) -> str:
        """The value, for the one place that sends it (a header, a signature, a URL)."""
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def register(value: str | None) -> None:
    """Remember a secret value (and its URL-encoded forms) so that `redact` removes it."""
    if not value or len(value) < _MIN_LENGTH:
        return
    with _lock:
        _known.update({value, quote(value, safe=""), quote_plus(value, safe="")})
        for part in value.strip("/").split("/"):
            # a webhook URL: its path segments (user id and code) are secret only together
            # with the host, but the code segment alone is the credential
            if len(part) >= 8 and not part.startswith("http") and "." not in part:
                _known.add(part)


def redact(text: object) -> str:
    """`text` with every registered secret replaced by `***`."""
    result = str(text)
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in result:
            result = result.replace(value, MASK)
    return result


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs registered secrets from the message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _known:
            return True
        try:
            message = record.getMessage()
        except Exception:  # pragma: no cover - a broken format string is logged as is
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()
# Loggers that may see a request URL or a response: ours and the HTTP stack's.
_LOGGERS = ("voronka", "urllib3", "urllib3.connectionpool", "requests")


def install_log_redaction() -> None:
    """Attach the redacting filter to our loggers and to the HTTP stack's (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def env_secret(env: dict[str, str], name: str) -> Secret | None:
    """The secret in `env[name]`, or None when unset or blank."""
    value = (env.get(name) or "").strip()
    return Secret(value) if value else None
