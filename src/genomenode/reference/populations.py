"""The Genome of Europe populations of a dataset, and which samples count in each.

Samples fall into cells, one per country × declared sex (``FI_M``, ``FI_F``,
``FI_U`` for a sex other than male or female), from the individuals' records
(:attr:`genomenode.store.published.PublishedDataset.population_groups`). The
published populations are sums of cells:

- ``<country>``: every sample of the country (its ``_U`` ones included);
- ``<country>_M``, ``<country>_F``: its males, its females;
- ``M``, ``F``: the males, the females of every country;
- ``total``: every sample, listed only when the dataset spans more than one
  country (otherwise it is the country's row).

QC-failing samples are in no cell.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["TOTAL", "Populations", "populations_of_cells"]

#: The population of every sample of several countries.
TOTAL = "total"


@dataclasses.dataclass(frozen=True)
class Populations:
    """Cells of the samples and the populations built from them.

    Attributes
    ----------
    sample_cells
        Cell of each genotype column (int32), -1 for a sample that counts nowhere
        (QC-failing, or no individual).
    cell_names
        ``<country>_<M|F|U>`` of each cell.
    names
        The published populations, in order (countries first, then ``M``, ``F``,
        ``total``).
    membership
        ``(cells, populations)`` 0/1 int64: which cells sum into each population.
    """

    sample_cells: np.ndarray
    cell_names: list[str]
    names: list[str]
    membership: np.ndarray

    @property
    def num_samples(self) -> np.ndarray:
        """Samples counted in each population (int64, by population)."""
        cells = self.sample_cells[self.sample_cells >= 0]
        per_cell = np.bincount(cells, minlength=len(self.cell_names))
        return per_cell @ self.membership

    def cell_samples(self) -> dict[str, int]:
        """Samples counted in each cell, by cell name."""
        cells = self.sample_cells[self.sample_cells >= 0]
        per_cell = np.bincount(cells, minlength=len(self.cell_names))
        return {name: int(n) for name, n in zip(self.cell_names, per_cell, strict=True)}

    def countries(self) -> list[str]:
        """The country populations (two-letter names), in order."""
        return [name for name in self.names if len(name) == 2]


def populations_of_cells(
    sample_cells: np.ndarray,
    cell_names: list[str],
    sample_pass: np.ndarray | None = None,
) -> Populations:
    """The populations of a dataset whose samples are in ``cell_names`` cells.

    Parameters
    ----------
    sample_cells
        Cell index of each sample (-1: none).
    cell_names
        ``<country>_<M|F|U>`` by cell index.
    sample_pass
        QC: samples to count (None: all).
    """
    cells = np.asarray(sample_cells, dtype=np.int32).copy()
    if sample_pass is not None:
        if len(sample_pass) != len(cells):
            raise ValueError(
                f"sample_pass has {len(sample_pass)} values for {len(cells)} samples"
            )
        cells[~np.asarray(sample_pass, dtype=bool)] = -1
    countries = sorted({name.split("_")[0] for name in cell_names})
    names: list[str] = []
    for country in countries:
        names += [country, f"{country}_M", f"{country}_F"]
    names += ["M", "F"]
    if len(countries) > 1:
        names.append(TOTAL)
    index = {name: position for position, name in enumerate(names)}
    membership = np.zeros((len(cell_names), len(names)), dtype=np.int64)
    for cell, name in enumerate(cell_names):
        country, sex = name.split("_")
        membership[cell, index[country]] = 1
        if sex in ("M", "F"):
            membership[cell, index[f"{country}_{sex}"]] = 1
            membership[cell, index[sex]] = 1
        if TOTAL in index:
            membership[cell, index[TOTAL]] = 1
    return Populations(cells, list(cell_names), names, membership)
