"""What a run's results depend on, and whether the last published run was made of the same (D150).

A `voronka run` whose inputs are those of the run that published the warehouse would rebuild
the same tables, checks, report and exports byte for byte (the same inputs and as-of give
byte-identical marts, D92). Such a run is skipped: nothing is loaded, built, validated or
published, and the command says so.

The inputs are:

- every entry of the inbox folder (its relative path and the sha256 of its content; folders and
  other entries by name), so a new, changed, renamed or removed file is a change;
- the settings that reach the results: time zone, as-of, report language, the dbt vars read from
  the environment (the channel fields);
- the code: a digest of the pipeline's own files (Python, dbt models and macros, seeds,
  expectation suites) and the versions of DuckDB and dbt, so an upgrade rebuilds.

- the file sources that are on (CDR, survey forms): every entry of their folders, as for the
  inbox, their mapping files' sha256 and their folders' paths (D221);
- the names of the API sources that are on (amoCRM, Bitrix24, Mango Office).

They are recorded in the warehouse's state file (`lib/warehouse.py`) when a run publishes; any
other publish (`close-period`, `reopen-period`, a run from the Dagster UI) writes the state
without them, so the next run is a full one. What an API holds now is known only by asking it:
with an API source on, a run whose other inputs are the published run's extracts first, and
skips the rest only when the extraction landed no new row (`Checked.extract_first`,
`runner.run_pipeline`, D221).

Hashing is the costly part on a large inbox (gigabytes): a file's sha256 is kept with the
file's size, mtime, ctime and inode (`FileHashes`, `<stem>.hashes.json` beside the state file)
and computed again only when one of them changed. The loader reads the same cache (D151), so a
run hashes a file once, and a file that did not change is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from dagster_project.lib import warehouse as wh
from dagster_project.lib.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# the pipeline's own files: what they say decides the results
CODE_FOLDERS = ("dagster_project", "dbt_models", "seeds", "expectations")
CODE_SKIP = {"target", "logs", "dbt_packages", "__pycache__"}
# dbt writes `.user.yml` (an anonymous id) the first time it runs in a checkout: not code, and
# counting it made that first run's next unchanged run build again (D150)
CODE_SKIP_FILES = {".user.yml"}
CODE_SUFFIXES = {".py", ".sql", ".yml", ".yaml", ".csv", ".json", ".md", ".j2", ".html"}
# dbt vars the profile and dbt_project.yml read from the environment (no secrets among them)
DBT_ENV_VARS = ("VORONKA_AMOCRM_CHANNEL_FIELD", "VORONKA_BITRIX24_CHANNEL_FIELD")
VERSIONED = ("duckdb", "dbt-core", "dbt-duckdb", "great_expectations")
# what a run writes next to the published warehouse (defs/reports.py)
OUTPUT_FOLDERS = ("report", "exports")
OUTPUT_FILES = ("summary.txt",)


def hashes_path(published: Path | str) -> Path:
    return wh.state_dir(published) / f"{wh.stem(published)}.hashes.json"


class FileHashes:
    """sha256 of files, kept with their stat and computed again only when it changed (D151).

    The key of a file is its resolved path; its stat is size, mtime, ctime (which no tool can set
    back: any write moves it) and inode. Saved beside the warehouse's state file by the process
    that holds the warehouse (one writer, D81)."""

    def __init__(self, published):
        # a PostgreSQL warehouse has no folder beside it: nothing is kept, every file is read
        self.path = None if wh.is_postgres(published) else hashes_path(published)
        try:
            self._known: dict[str, list] = json.loads(self.path.read_text(encoding="utf-8"))
        except (AttributeError, OSError, ValueError):
            self._known = {}
        self._seen: dict[str, list] = {}
        self.hashed_bytes = 0

    def sha256(self, path: Path) -> str:
        """The sha256 of a file's content (OSError when it cannot be read)."""
        key = str(Path(path).resolve())
        st = os.stat(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = self._known.get(key)
        if known and known[:4] == stamp:
            self._seen[key] = known
            return known[4]
        from dagster_project.lib.inbox_loader import file_sha256  # the loader's own rule (D12)

        sha = file_sha256(Path(path))
        self.hashed_bytes += st.st_size
        # stat again: a file written while it was read keeps no entry (its next read hashes it)
        after = os.stat(path)
        if [after.st_size, after.st_mtime_ns, after.st_ctime_ns, after.st_ino] == stamp:
            self._known[key] = self._seen[key] = [*stamp, sha]
        return sha

    def save(self) -> None:
        """Write the cache, less the entries of files that no longer exist."""
        if self.path is None:
            return
        known = {key: value for key, value in self._known.items() if Path(key).exists()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)


def _walk(folder: Path) -> list[tuple[str, Path | None]]:
    """Every entry under `folder`: (relative path, the file to hash or None for a folder or an
    entry that is not a regular file), in name order."""
    entries: list[tuple[str, Path | None]] = []
    if not folder.is_dir():
        return entries
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        base = Path(root)
        for name in dirs:
            entries.append(((base / name).relative_to(folder).as_posix() + "/", None))
        for name in sorted(files):
            path = base / name
            rel = path.relative_to(folder).as_posix()
            entries.append((rel, path if path.is_file() else None))
    return sorted(entries)


def inbox_digest(inbox: Path, hashes: FileHashes) -> dict[str, str]:
    """Relative path -> sha256 of every file of the inbox ("" for any other entry)."""
    found = {}
    for rel, path in _walk(Path(inbox)):
        try:
            found[rel] = hashes.sha256(path) if path is not None else ""
        except OSError as exc:  # unreadable: a change by definition (the loader reports it)
            found[rel] = f"unreadable: {exc.strerror}"
    return found


def code_digest() -> str:
    """One sha256 over the pipeline's own files (paths and contents)."""
    digest = hashlib.sha256()
    for folder in CODE_FOLDERS:
        for root, dirs, files in os.walk(ROOT / folder):
            dirs[:] = sorted(d for d in dirs if d not in CODE_SKIP)
            for name in sorted(files):
                path = Path(root, name)
                if path.suffix not in CODE_SUFFIXES or name in CODE_SKIP_FILES:
                    continue
                digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = ""
    return found


def current_inputs(settings: Settings, hashes: FileHashes) -> dict:
    """The inputs of a run with these settings (module docstring)."""
    inputs = {
        "inbox": inbox_digest(settings.inbox, hashes),
        "settings": {
            "business_timezone": settings.business_timezone,
            "as_of": settings.as_of,
            "language": settings.language,
            **{name: os.environ.get(name) for name in DBT_ENV_VARS},
        },
        "code": code_digest(),
        "versions": _versions(),
    }
    sources = source_inputs(hashes)
    if sources:
        inputs["sources"] = sources
    return inputs


def source_inputs(hashes: FileHashes) -> dict:
    """The file sources' files and mappings, and the API sources' names, of the sources that
    are on (D221); {} when none is."""
    from dagster_project.lib.sources import API_SOURCES, configured_sources
    from dagster_project.lib.sources.cdr_csv import CdrSettings
    from dagster_project.lib.sources.survey_forms import FormsSettings

    on = configured_sources()
    found: dict = {}
    api = sorted(name for name in on if name in API_SOURCES)
    if api:
        found["api"] = api
    cdr, forms = CdrSettings.from_env(), FormsSettings.from_env()
    for name, folder, mapping in (
        ("cdr", cdr and cdr.folder, cdr and cdr.mapping_file),
        ("forms", forms and forms.folder, forms and forms.config_file),
    ):
        if folder is None:
            continue
        found[name] = {
            "folder": str(Path(folder).absolute()),
            "files": inbox_digest(folder, hashes),
            "mapping": _sha256_or_reason(Path(mapping), hashes),
        }
    return found


def _sha256_or_reason(path: Path, hashes: FileHashes) -> str:
    try:
        return hashes.sha256(path)
    except OSError as exc:  # a change by definition (the source's asset reports it)
        return f"unreadable: {exc.strerror}"


def outputs(published: Path | str) -> dict[str, list[int]]:
    """The files a run writes next to the published warehouse: relative path -> [size, mtime]."""
    folder = wh.local_folder(published)
    found = {}
    candidates = [folder / name for name in OUTPUT_FILES]
    for name in OUTPUT_FOLDERS:
        candidates += [path for _, path in _walk(folder / name) if path is not None]
    for path in candidates:
        try:
            st = path.stat()
        except OSError:
            continue
        found[path.relative_to(folder).as_posix()] = [st.st_size, st.st_mtime_ns]
    return found


def record(inputs: dict | None, published: Path | str) -> dict | None:
    """What the state file keeps of a published run: its inputs and its outputs' stat."""
    if inputs is None:
        return None
    return {"inputs": inputs, "outputs": outputs(published)}


def published_run_is_current(session: wh.Session, inputs: dict | None) -> str | None:
    """Why the published warehouse is already what a run with `inputs` would publish, as a
    sentence for the run's output; None when a run is needed."""
    if inputs is None or not session.owner or session.dirty or wh.is_postgres(session.published):
        return None  # on PostgreSQL every run runs: no file identity to compare (D183)
    state = wh.read_state(session.published)
    last = state.get(wh.RUN_RECORD_KEY)
    if not last or state.get("published") != wh.stat_record(session.published):
        return None
    if last.get("inputs") != inputs or last.get("outputs") != outputs(session.published):
        return None
    since = last.get("published_at", "?")
    return (
        f"Nothing changed since the run published at {since} UTC (the same inbox files, "
        "settings and code): the published warehouse, the report and the exports are current; "
        "nothing was loaded, built or validated (D150). `voronka run --force` runs anyway."
    )


def api_skip_sentence(session: wh.Session, api: list[str]) -> str:
    """Why a run with API sources on skipped everything after their extraction (D221)."""
    since = wh.read_state(session.published).get(wh.RUN_RECORD_KEY, {}).get("published_at", "?")
    return (
        f"No new rows from {', '.join(api)}, and nothing else changed since the run published "
        f"at {since} UTC (the same inbox and source files, settings and code): dbt, the checks, "
        "the report and the exports were skipped, their results are current; the extraction's "
        "state was published (D221). `voronka run --force` runs anyway."
    )


@dataclass(frozen=True)
class Checked:
    """A run's inputs (None when they cannot be known, module docstring) and, when they are
    those of the published run, the sentence saying so (else None: the run goes on).

    `extract_first`: the API sources that are on, when every other input is the published
    run's: the run extracts them first and skips the rest if they land no new row (D221)."""

    inputs: dict | None
    unchanged: str | None
    extract_first: tuple[str, ...] = ()


def check(settings: Settings, session: wh.Session, force: bool = False) -> Checked:
    """Work out the run's inputs (hashing only files whose stat changed, D151) and whether the
    published run had the same (D150; `force`: never). Reads no warehouse and imports no
    Dagster, so that a skipped run costs the start-up and the inbox's listing only."""
    if wh.is_postgres(settings.warehouse):  # no state file to record into: every run runs
        return Checked(None, None)
    hashes = FileHashes(settings.warehouse)
    inputs = current_inputs(settings, hashes) if session.owner else None
    hashes.save()  # the loader reads what was hashed here
    unchanged = None if force else published_run_is_current(session, inputs)
    api = (inputs or {}).get("sources", {}).get("api")
    if unchanged and api:  # what the APIs hold is known after extracting them (D221)
        return Checked(inputs, None, tuple(api))
    return Checked(inputs, unchanged)
