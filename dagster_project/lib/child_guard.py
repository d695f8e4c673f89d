"""Child processes end with the process that started them (D83).

A `voronka run` killed with SIGKILL cannot end its children: its validation worker (D68)
and its `dbt build` went on as orphans, and the orphaned dbt kept the working copy locked
against the next run. Two guards:

- :func:`watch_parent` (the validation worker's initializer): a daemon thread that ends the
  process when its parent is gone (`os.getppid()` changes when a process is re-parented);
  polling, because Linux's parent-death signal fires when the *thread* that started the child
  ends, and the pool may start its worker from a thread that ends before the run does.
- ``python -m dagster_project.lib.child_guard PROGRAM ARGS...`` (the dbt launcher
  ``dagster_project/bin/dbt``): asks Linux for SIGKILL when the parent dies
  (``PR_SET_PDEATHSIG``), then becomes PROGRAM (``execv`` keeps the request). dagster-dbt
  starts dbt from the step's thread and waits on it there, so that thread lives as long as dbt.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def watch_parent(parent_pid: int) -> None:
    """End this process (exit 1, no cleanup) as soon as `parent_pid` is no longer its parent."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(POLL_SECONDS)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="voronka-parent-watch", daemon=True).start()


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `sig` to this process when its parent dies; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m dagster_project.lib.child_guard PROGRAM [ARGS...]")
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the parent died before the request took effect
        sys.exit(1)
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
