"""genomenode: one package that runs a node of a federated European genome network.

The names below are imported on first use (PEP 562), not with the package:
``import genomenode`` (and so every ``genomenode`` command, ``--help`` included)
stays light, and only what is used loads the ingest stack (bio2zarr, zarr).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Public name -> the module that defines it (its one import path).
_DEFINED_IN = {
    "DatasetDescription": "genomenode.dataset",
    "GenomenodeError": "genomenode.errors",
    "IngestResult": "genomenode.ingest.pipeline",
    "Node": "genomenode.store.node",
    "Secret": "genomenode.config",
    "__version__": "genomenode.version",
    "discard": "genomenode.ingest.pipeline",
    "ingest": "genomenode.ingest.pipeline",
    "init_node": "genomenode.store.node",
    "load_config": "genomenode.config",
    "open_node": "genomenode.store.node",
    "read_dataset_description": "genomenode.dataset",
}

__all__ = sorted(_DEFINED_IN)

if TYPE_CHECKING:
    from .config import Secret as Secret
    from .config import load_config as load_config
    from .dataset import DatasetDescription as DatasetDescription
    from .dataset import read_dataset_description as read_dataset_description
    from .errors import GenomenodeError as GenomenodeError
    from .ingest.pipeline import IngestResult as IngestResult
    from .ingest.pipeline import discard as discard
    from .ingest.pipeline import ingest as ingest
    from .store.node import Node as Node
    from .store.node import init_node as init_node
    from .store.node import open_node as open_node
    from .version import __version__ as __version__


def __getattr__(name: str) -> Any:
    module = _DEFINED_IN.get(name)
    if module is None:
        raise AttributeError(f"module 'genomenode' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_DEFINED_IN})
