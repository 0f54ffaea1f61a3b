"""Progress bars for long jobs, on stderr (stdout stays clean for data); `--quiet` turns them off."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    """Silence (True) or restore every progress bar and status line of this process."""
    _state["quiet"] = bool(quiet)


def is_quiet() -> bool:
    return _state["quiet"]


def bar(description: str = "{task.description}", *, enabled: bool = True, unit: str = "",
        extra: tuple[Any, ...] = ()) -> Progress:
    """A transient rich progress bar on stderr: description, bar, done/total [unit], elapsed time."""
    counter = "{task.completed}/{task.total}" + (f" {unit}" if unit else "")
    return Progress(TextColumn(description), BarColumn(), TextColumn(counter), *extra, TimeElapsedColumn(),
                    console=console, disable=is_quiet() or not enabled, transient=True)


def dask_progress(description: str):
    """A dask callback that drives a progress bar over the tasks of every local-scheduler computation
    run inside `with dask_progress(...):` (a dask.distributed cluster reports on its dashboard)."""
    from dask.callbacks import Callback

    class _Tasks(Callback):
        def __enter__(self):
            self._bar = bar(description, unit="tasks").__enter__()
            self._task = self._bar.add_task(description, total=None)
            return super().__enter__()

        def __exit__(self, *exc):
            super().__exit__(*exc)
            self._bar.__exit__(*exc)

        def _start_state(self, dsk, state):
            self._bar.update(self._task, total=len(state["ready"]) + len(state["waiting"]) + len(state["running"]),
                             completed=0)

        def _posttask(self, key, result, dsk, state, worker_id):
            self._bar.advance(self._task)

    return _Tasks()
