"""The OAuth token store: the newest access/refresh pair of each source, outside the repository.

amoCRM and Bitrix24 refresh tokens are single-use: once a refresh has given a new pair, the
pair in the environment is dead. The new pair is written here (`VORONKA_TOKEN_STORE`, default
`~/.config/voronka/tokens.json`; the file mode 0600, its folder 0700) and preferred over the
environment from then on. When the environment is given a different refresh token (the
integration was re-authorised), the environment wins again: the store remembers a fingerprint
of the environment token its pair descends from.

Two processes of the same integration (a scheduled and a manual run) must not both spend the
one refresh token: the second would be refused, and on Bitrix24 the first's new access token is
the only one that works. A refresh therefore happens under an exclusive lock on
`<store>.lock` (`fcntl.flock`, released by the kernel if the process dies), and re-reads the
store once it holds the lock: when another process has refreshed meanwhile, its pair is taken
and no request is made. The new pair is saved the moment the token endpoint answers, atomically
and durably (a temporary file in the same folder, fsync, rename, fsync of the folder), so that a
crash after the answer loses at most the answer being written, never the previous pair (D98).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster_project.lib.sources.http import Auth, AuthError
from dagster_project.lib.sources.secrets import Secret

log = logging.getLogger("voronka.sources.tokens")

DEFAULT_TOKEN_STORE = Path("~/.config/voronka/tokens.json")
# how long a refresh waits for another process's refresh of the same store (a token request
# takes seconds; a minute means that process hangs)
LOCK_TIMEOUT_SECONDS = 60.0


def token_store_path(env: dict[str, str] | None = None) -> Path:
    """`VORONKA_TOKEN_STORE`, or `~/.config/voronka/tokens.json`."""
    env = os.environ if env is None else env
    return Path(env.get("VORONKA_TOKEN_STORE") or DEFAULT_TOKEN_STORE).expanduser()


def fingerprint(value: str) -> str:
    """A short, one-way fingerprint of a token (safe to store next to it, never to log)."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@dataclass
class TokenPair:
    """An access token, its refresh token and when the access token expires (epoch seconds)."""

    access_token: Secret
    refresh_token: Secret | None
    expires_at: float | None = None
    seed: str | None = None  # fingerprint of the environment refresh token it descends from
    rest_url: str | None = None  # the REST base the token endpoint named (Bitrix24, D104)

    def expired(self, now: float | None = None, margin: float = 60.0) -> bool:
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - margin

    def __repr__(self) -> str:
        return f"TokenPair(expires_at={self.expires_at!r})"


class TokenStore:
    """A JSON file `{key: {access_token, refresh_token, expires_at, seed}}`, mode 0600."""

    def __init__(self, path: Path):
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def _read(self) -> dict:
        try:
            with self.path.open(encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("token store %s is unreadable; using the environment's tokens", self.path)
            return {}
        return data if isinstance(data, dict) else {}

    def load(self, key: str) -> TokenPair | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict) or not entry.get("access_token"):
            return None
        refresh = entry.get("refresh_token")
        return TokenPair(
            access_token=Secret(entry["access_token"]),
            refresh_token=Secret(refresh) if refresh else None,
            expires_at=entry.get("expires_at"),
            seed=entry.get("seed"),
            rest_url=entry.get("rest_url"),
        )

    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold the store's exclusive inter-process lock (`<store>.lock`, D98)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"the token store {self.path} stayed locked for {timeout:.0f} s by "
                            "another Voronka process refreshing the same integration; wait for "
                            "it to finish, or stop it, then run again"
                        ) from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def save(self, key: str, pair: TokenPair) -> None:
        """Write the pair atomically and durably: a temporary file in the same folder, fsync,
        rename over the store, fsync of the folder (D98)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = self._read()
        data[key] = {
            "access_token": pair.access_token.reveal(),
            "refresh_token": pair.refresh_token.reveal() if pair.refresh_token else None,
            "expires_at": pair.expires_at,
            "seed": pair.seed,
            "rest_url": pair.rest_url,
            "saved_at": time.time(),
        }
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def current_pair(store: TokenStore, key: str, env_pair: TokenPair) -> TokenPair:
    """The pair to use: the stored one if it descends from the environment's refresh token,
    else the environment's (first run, or re-authorised since)."""
    seed = fingerprint(env_pair.refresh_token.reveal()) if env_pair.refresh_token else None
    env_pair.seed = seed
    stored = store.load(key)
    if stored is not None and stored.seed == seed:
        return stored
    return env_pair


class PairAuth(Auth):
    """An OAuth access/refresh pair of a source, kept in the token store under `<source>:<host>`.

    The sources subclass it with their `refresh` (the token endpoint differs) and set
    `self.pair`. `settings` must have `host`, `token_store`, `client_id` and `client_secret`.
    """

    label = ""  # the source's name in log lines
    log = log  # the source's logger

    def __init__(self, settings, source: str, store: TokenStore | None = None):
        self.settings = settings
        self.store = store or TokenStore(settings.token_store)
        self.source = source
        self.key = f"{source}:{settings.host}"

    def can_refresh(self) -> bool:
        s = self.settings
        return bool(self.pair.refresh_token and s.client_id and s.client_secret)

    def refresh_due(self) -> bool:
        return self.can_refresh() and self.pair.expired()

    def refresh_guarded(self, client: Any) -> None:
        """Refresh under the store's lock (D98): once it is held, take the stored pair when
        another process has refreshed since this one read it; else spend the refresh token
        (`refresh`, which saves the answer before returning)."""
        with self.store.lock():
            stored = self.store.load(self.key)
            if (
                stored is not None
                and stored.seed == self.pair.seed
                and stored.access_token != self.pair.access_token
                and not stored.expired()
            ):
                self.pair = stored
                self.log.info(
                    "%s %s: another process refreshed the access token; using its pair",
                    self.label,
                    self.settings.host,
                )
                return
            self.refresh(client)

    def rest_url_of(self, answer: dict) -> str | None:
        """The REST base a token answer names, kept with the pair (none by default)."""
        return None

    def keep_answer(
        self, answer: Any, endpoint: str, expires_at: Callable[[dict], float | None]
    ) -> None:
        """Keep the new pair of the token endpoint's JSON `answer` (`access_token`,
        `refresh_token`; `expires_at(answer)` reads its expiry): use it from now on and save
        it (refresh tokens are single-use). An answer without an access token is an `AuthError`.
        """
        data = answer if isinstance(answer, dict) else {}
        if not data.get("access_token"):
            raise AuthError(self.source, endpoint, "no access_token in the answer")
        self.pair = TokenPair(
            access_token=Secret(data["access_token"]),
            refresh_token=Secret(data["refresh_token"]) if data.get("refresh_token") else None,
            expires_at=expires_at(data),
            seed=self.pair.seed,
            rest_url=self.rest_url_of(data),
        )
        self.store.save(self.key, self.pair)
        self.log.info(
            "%s %s: access token refreshed and saved to the token store",
            self.label,
            self.settings.host,
        )
