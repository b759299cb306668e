"""The per-dataset lock: one ingest or lifecycle change of a dataset id at a time.

An ``flock`` on ``<storage>/staging/<id>.lock``, held by ``genomenode ingest`` for
the whole ingest and by ``genomenode datasets unpublish|publish|set-access|remove``
for their change, so that a removal never races an ingest of the same id. The lock
is released when its holder exits, also when it is killed.
"""

from __future__ import annotations

import contextlib
import fcntl
import pathlib
import time
from collections.abc import Iterator

from ..errors import IngestError

__all__ = ["dataset_lock"]


@contextlib.contextmanager
def dataset_lock(
    staging_dir: pathlib.Path, dataset_id: str, *, wait_seconds: float = 30.0
) -> Iterator[None]:
    """Hold the lock of ``dataset_id``; another holder is waited for, then refused.

    Raises
    ------
    IngestError
        Another ingest or change of the dataset held the lock for ``wait_seconds``.
    """
    staging_dir.mkdir(parents=True, exist_ok=True)
    lock_path = staging_dir / f"{dataset_id}.lock"
    with open(lock_path, "a") as handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IngestError(
                        f"another ingest or change of dataset {dataset_id!r} is "
                        "running on this node; wait for it to finish"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
