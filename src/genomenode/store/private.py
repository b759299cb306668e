"""Files that hold personal data: readable by their owner only.

Genotypes, phenopackets, clinical tables, the node store (VCF Zarr, Crypt4GH files,
staging), the metadata database and keys are written with mode 0600, their
directories 0700. :func:`private_files` sets the process's umask to leave out group
and others for the duration of a command that writes them (``simulate``, ``init``,
``ingest``, the demo's set-up), so that every file made inside it, by Python, by
pysam and htslib, by SQLite or by bio2zarr's worker processes (which inherit the
umask when they start), is private from its first byte: there is no moment at
which another user could open it.

The umask belongs to the whole process: the block is for commands, not for code
that runs beside other threads writing files that should stay readable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["PRIVATE_DIRECTORY_MODE", "PRIVATE_FILE_MODE", "private_files"]

#: The mode of a file holding personal data or a key.
PRIVATE_FILE_MODE = 0o600
#: The mode of a directory holding such files.
PRIVATE_DIRECTORY_MODE = 0o700
_PRIVATE_UMASK = 0o077


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Within the block, new files are at most 0600 and new directories 0700.

    The umask in force is only ever tightened (a stricter one stays), and restored
    on leaving; blocks nest.
    """
    previous = os.umask(_PRIVATE_UMASK)
    os.umask(previous | _PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)
