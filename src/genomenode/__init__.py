"""genomenode: one package that runs a node of a federated European genome network."""

from .config import Secret, load_config
from .dataset import DatasetDescription, read_dataset_description
from .errors import GenomenodeError
from .ingest import IngestResult, discard, ingest
from .node import Node, init_node, open_node

__version__ = "0.1.0"

__all__ = [
    "DatasetDescription",
    "GenomenodeError",
    "IngestResult",
    "Node",
    "Secret",
    "__version__",
    "discard",
    "ingest",
    "init_node",
    "load_config",
    "open_node",
    "read_dataset_description",
]
