"""One BLAS thread per analysis thread.

A node answers several analysis rounds at once (the coordinator keeps a few
windows in flight), each in its own thread of the server's pool; OpenBLAS would
start its own threads for every matrix product on top of those, and on a busy
machine the threads then wait on each other: measured on the GWAS kernel with
two cores under load, 2–3 s per round with OpenBLAS's threads against 0.4–0.6 s
with one. So each analysis thread asks OpenBLAS for one thread *for itself*
(``openblas_set_num_threads_local``, OpenBLAS ≥ 0.3.27), leaving the rest of
the process as it was.

NumPy's wheels bundle OpenBLAS without an API to reach it (threadpoolctl does
what this module does, for every BLAS; it is not a dependency). When the
library or the symbol cannot be found — another BLAS, a NumPy built otherwise —
:func:`one_thread` does nothing: the numbers are the same either way, only the
time differs.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import pathlib
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["one_thread"]


@functools.cache
def _set_local() -> Any:
    """OpenBLAS's per-thread setter in NumPy's bundled library, or None."""
    folder = pathlib.Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for library in sorted(folder.glob("libscipy_openblas*.so*")):
        try:
            loaded = ctypes.CDLL(str(library))
            setter = loaded.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.restype = ctypes.c_int
        setter.argtypes = [ctypes.c_int]
        return setter
    return None


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Within the block, this thread's matrix products use one BLAS thread."""
    setter = _set_local()
    if setter is None:
        yield
        return
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)
