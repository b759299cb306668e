"""Ingest: a cohort (VCF, clinical data, dataset.yaml) becomes a published dataset.

The names below are imported on first use (PEP 562): a worker process imports
``genomenode.ingest.convert`` without the pipeline behind them (the database and
the store's node: ~0.5 s of CPU a worker).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["STEPS", "IngestResult", "discard", "ingest"]

if TYPE_CHECKING:
    from .pipeline import STEPS as STEPS
    from .pipeline import IngestResult as IngestResult
    from .pipeline import discard as discard
    from .pipeline import ingest as ingest


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'genomenode.ingest' has no attribute {name!r}")
    value = getattr(importlib.import_module("genomenode.ingest.pipeline"), name)
    globals()[name] = value  # the next access is a plain attribute
    return value
