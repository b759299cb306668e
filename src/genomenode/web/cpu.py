"""The CPU time a request's own work took: :func:`work_time`.

Limits on what a caller's request may cost (``beacon_filter_cpu_seconds``) are
measured in the thread's CPU time. The cyclic garbage collector runs in whichever
thread happens to allocate when a generation fills up, and a full collection of a
large process (ontologies, caches) takes a second or more on a slow machine: that
is the process's cost, not the request's, and charging it to the unlucky request
refuses a cheap query at random. :func:`work_time` leaves it out.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

__all__ = ["work_time"]


class _Collections(threading.local):
    """Per thread: CPU seconds spent collecting, and when the current one began."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.started: float | None = None


_collections = _Collections()


def _on_collection(phase: str, info: dict[str, Any]) -> None:
    # gc calls back in the collecting thread, before ("start") and after ("stop").
    if phase == "start":
        _collections.started = time.thread_time()
    elif _collections.started is not None:
        _collections.seconds += time.thread_time() - _collections.started
        _collections.started = None


gc.callbacks.append(_on_collection)


def work_time() -> float:
    """This thread's CPU time in seconds, less what it spent collecting garbage.

    Only differences are meaningful, as with :func:`time.thread_time`.
    """
    return time.thread_time() - _collections.seconds
