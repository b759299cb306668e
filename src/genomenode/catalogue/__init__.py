"""Dataset catalogues: each node's as DCAT-AP, the network's harvested union.

:mod:`.dcat` describes a node's published datasets in DCAT-AP 3 / HealthDCAT-AP,
:mod:`.http` serves them under ``/catalogue``, and :mod:`.harvest` is the network
side: it harvests the registered nodes' catalogues and searches their union.
"""

from .dcat import catalogue_graph, dataset_iri, serialise
from .harvest import CatalogueSource, Harvester, HarvestStatus

__all__ = [
    "CatalogueSource",
    "HarvestStatus",
    "Harvester",
    "catalogue_graph",
    "dataset_iri",
    "serialise",
]
