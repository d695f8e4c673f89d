"""Runs the suite starts before the tests that read them, beside the tests (D412).

Most of the suite's time is `voronka run`s and dbt builds of small inboxes, and one of them keeps
about one of the machine's two cores busy (Python, with dbt and the validation worker mostly
waiting on each other). A fixture whose run depends on nothing the tests do before it (a first
run of an inbox written from constants) registers it as a job (`job`): a function that writes
the job's files into its own folder and returns the commands to run there, one after another,
as subprocesses (a user's `voronka run`; the next command only if the one before exited 0).

When the session starts (the autouse `background` fixture, tests/conftest.py), the jobs of the
collected tests are queued in the order of their first test and run one at a time beside the
tests, two while a test waits for one. A fixture takes its job's folder and outcomes with
`Background.take`, which waits for a started job and runs a job not yet started at once (in
the test's own thread: with `pytest -n`, or when the job's test comes first). A job only ever
writes its own folder; what a test does after it (later runs, copies) is the test's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# the jobs at most running at once beside a test, and while a test waits for one
BESIDE_A_TEST, WHILE_A_TEST_WAITS = 1, 2


@dataclass(frozen=True)
class Command:
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)  # set over the environment it starts from
    unset: tuple[str, ...] = ()  # names taken out of that environment (`NAME*`: a prefix)
    cwd: Path | None = None
    timeout: int = 1800  # beside other runs on two cores

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """Its environment started from `base`: a job's, the session's at its start (a test
        may have changed `os.environ` since: an in-process `voronka run` exports its
        settings while it runs)."""

        def unset(name: str) -> bool:
            return any(
                name.startswith(u[:-1]) if u.endswith("*") else name == u for u in self.unset
            )

        return {**{k: v for k, v in base.items() if not unset(k)}, **self.env}


def voronka(*args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()) -> Command:
    """`voronka <args>` as a user types it (the venv's Python, this checkout's package)."""
    return Command([sys.executable, "-m", "dagster_project.cli", *args], env=env or {}, unset=unset)


def python(code: str, *args: str) -> Command:
    """A few lines of Python in a process of their own."""
    return Command([sys.executable, "-c", code, *args])


def copy_file(source: Path, target: Path) -> Command:
    """A file copied (its folder made), a step between two commands of a job."""
    code = (
        "import pathlib, shutil, sys; target = pathlib.Path(sys.argv[2]); "
        "target.parent.mkdir(parents=True, exist_ok=True); shutil.copyfile(sys.argv[1], target)"
    )
    return python(code, str(source), str(target))


def load(inbox: Path, warehouse: Path) -> Command:
    """`lib.inbox_loader.load_inbox(inbox, warehouse)`, as the tests call it."""
    load_inbox = "from dagster_project.lib.inbox_loader import load_inbox as f"
    return python(f"import sys; {load_inbox}; f(*sys.argv[1:])", str(inbox), str(warehouse))


@dataclass(frozen=True)
class Done:
    """A finished job: its folder and the outcomes of the commands it ran (text output)."""

    root: Path
    results: list[subprocess.CompletedProcess]

    @property
    def code(self) -> int:
        """The exit code of its last command (the first failed one's, if any failed)."""
        return self.results[-1].returncode

    def output(self) -> str:
        """The end of every command's output, for an assertion's message."""
        return "".join(r.stdout[-3000:] + r.stderr[-3000:] for r in self.results)


@dataclass(frozen=True)
class Job:
    name: str
    fixture: str  # the fixture that takes it
    file: str | None  # the test module of that fixture (None: any, for tests/conftest.py's)
    prepare: Callable[[Path], list[Command]]  # writes into the folder, returns the commands

    def needed_by(self, item) -> bool:
        uses = self.fixture in getattr(item, "fixturenames", ())
        return uses and (self.file is None or str(getattr(item, "path", "")) == self.file)


JOBS: dict[str, Job] = {}


def job(name: str, fixture: str, *, any_module: bool = False):
    """Register `prepare(folder) -> [Command, ...]` as the job `name`, taken by the fixture
    `fixture` of the calling module (`any_module`: of tests/conftest.py, for every module). A
    module imported again by another (as `tests.integration.<name>`) registers it again."""

    def register(prepare: Callable[[Path], list[Command]]):
        file = None if any_module else str(Path(prepare.__code__.co_filename).resolve())
        assert name not in JOBS or JOBS[name].file == file, f"two jobs named {name}"
        JOBS.setdefault(name, Job(name, fixture, file, prepare))
        return prepare

    return register


@dataclass
class _State:
    status: str = "queued"  # queued, running, done
    done: Done | None = None
    error: BaseException | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)


class Background:
    def __init__(self, tmp_path_factory) -> None:
        self._tmp = tmp_path_factory
        # made here, in the test's thread: two jobs' first `mktemp` at once would each make one
        tmp_path_factory.getbasetemp()
        self._env = dict(os.environ)  # the session's, before any test changed it
        self._cond = threading.Condition()
        self._states: dict[str, _State] = {}
        self._queue: list[str] = []
        self._running = 0  # jobs running in the background threads
        self._waiting = 0  # tests waiting for a job
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._workers = 0  # threads that may still take a job
        self._started = False
        self._items: list = []  # the session's tests, in order
        self._first: dict[str, int] = {}  # a queued job's first test

    def start(self, items) -> None:
        """Queue the jobs `items` (the session's tests, in order) need, first needed first."""
        self._items = list(items)
        first = {name: self._first_need(registered) for name, registered in JOBS.items()}
        with self._cond:
            self._started = True
            self._first = {name: index for name, index in first.items() if index is not None}
            self._queue = sorted(self._first, key=self._first.get)
            for name in self._queue:
                self._states[name] = _State()
            self._start_workers()

    def _start_workers(self) -> None:
        """Under the lock: a thread for each job that may start now, up to two."""
        while self._workers < min(WHILE_A_TEST_WAITS, len(self._queue)):
            thread = threading.Thread(target=self._work, name="tests-background", daemon=True)
            self._workers += 1
            thread.start()
            self._threads.append(thread)

    def _first_need(self, registered: Job) -> int | None:
        return next((i for i, item in enumerate(self._items) if registered.needed_by(item)), None)

    def needed(self, fixture: str) -> bool:
        """Whether a test of the session (when jobs were started) takes `fixture`."""
        return self._first_need(Job("", fixture, None, list)) is not None

    def submit(self, name: str, fixture: str, prepare: Callable[[Path], list[Command]]) -> None:
        """Queue the job `name` now, taken by the fixture `fixture`: a job whose inputs a
        fixture has just made (`prepare` as for `job`), in the order of its first test."""
        JOBS[name] = Job(name, fixture, None, prepare)
        index = self._first_need(JOBS[name])
        with self._cond:
            self._states[name] = _State()
            if self._closed or not self._started or index is None:  # run by `take`
                return
            self._first[name] = index
            later = [i for i, queued in enumerate(self._queue) if self._first[queued] > index]
            self._queue.insert(later[0] if later else len(self._queue), name)
            self._cond.notify_all()
            self._start_workers()

    def submitted(self, name: str) -> bool:
        with self._cond:
            return name in self._states

    def take(self, name: str) -> Done:
        """The finished job `name`: waited for, or run now if it has not started."""
        with self._cond:
            state = self._states.setdefault(name, _State())
            run_here = state.status == "queued"
            if run_here:
                if name in self._queue:
                    self._queue.remove(name)
                state.status = "running"
        if run_here:
            self._run(name, state)
        else:
            with self._cond:
                self._waiting += 1
                self._cond.notify_all()
                while state.status != "done":
                    self._cond.wait()
                self._waiting -= 1
        if state.error is not None:
            raise state.error
        assert state.done is not None
        return state.done

    def close(self) -> None:
        """End the jobs still running (a session cut short) and their processes."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            processes = [s.process for s in self._states.values() if s.process is not None]
        for process in processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for thread in self._threads:
            thread.join(30)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._closed and self._queue and self._running >= self._capacity():
                    self._cond.wait()
                if self._closed or not self._queue:
                    self._workers -= 1
                    return
                name = self._queue.pop(0)
                state = self._states[name]
                state.status = "running"
                self._running += 1
            try:
                self._run(name, state)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _capacity(self) -> int:
        return WHILE_A_TEST_WAITS if self._waiting else BESIDE_A_TEST

    def _run(self, name: str, state: _State) -> None:
        try:
            root = self._tmp.mktemp(f"bg-{name}")
            results = []
            for command in JOBS[name].prepare(root):
                results.append(self._command(command, state))
                if results[-1].returncode != 0:
                    break
            state.done = Done(root, results)
        except BaseException as exc:  # raised by `take`, in the test that needs the job
            state.error = exc
        finally:
            with self._cond:
                state.process = None
                state.status = "done"
                self._cond.notify_all()

    def _command(self, command: Command, state: _State) -> subprocess.CompletedProcess:
        with self._cond:
            if self._closed:
                raise RuntimeError("the session ended before the job ran")
            # a session of its own: `close` ends the command and everything it started
            process = subprocess.Popen(
                command.args,
                env=command.environment(self._env),
                cwd=command.cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
            )
            state.process = process
        try:
            out, err = process.communicate(timeout=command.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            raise AssertionError(f"{command.args[:4]} took over {command.timeout} s") from None
        return subprocess.CompletedProcess(command.args, process.returncode, out, err)
