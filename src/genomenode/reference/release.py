"""What of a reference may be published, through the node's disclosure layer.

Two rules, both documented in ``docs/reference.md``:

- **Which datasets.** A PUBLIC or REGISTERED dataset's reference is published. A
  CONTROLLED dataset's only when the node's ``reference_release_controlled``
  setting is on *and* its DUO terms allow an open aggregate release: a permission
  of no restriction, general research, health/medical/biomedical research or
  population origins (NRES, GRU, HMB, POA; not disease-specific DS), and no
  modifier that limits who may use the data or for what (RS, COL, IRB, GS, MOR,
  TS, US, PS, IS, NPOA, NPUNCU, NPU, NCU).
- **The small-count rule** (with ``disclosure_enabled``; callers granted the
  dataset's records get the truth), from the one disclosure layer
  (:meth:`genomenode.disclosure.control.DisclosureControl.release_total`, its floor
  ``max(beacon_count_threshold, disclosure_nfilter_tab)``):

  * a population of fewer samples than the floor is withheld; so that no
    withheld group can be recovered as a difference, the sex rows (``FI_M``,
    ``FI_F``, ``M``, ``F``) are all withheld when any country × sex cell with
    samples (unknown sex included) is below the floor, and the country rows when
    any country is;
  * each count of people or alleles (AC, AN, homozygous, heterozygous and
    hemizygous individuals) between 0 and the floor is published as the floor
    ("at most", ``adjusted``); AF, ``faf95`` and ``grpmax`` are computed from the
    published counts, so they reveal nothing the counts do not.

``faf95`` is gnomAD's filtering allele frequency (Whiffin et al. 2017): the
highest true allele frequency at which the observed AC would still be the upper
end of a one-sided 95 % Poisson interval, i.e. the largest AF with
``P(X <= AC - 1 | λ = AN × AF) >= 0.95``. ``grpmax`` is the country population
with the highest AF (gnomAD's group maximum over genetic ancestry groups; here
over the countries).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.special import gammainccinv

from ..disclosure.control import DisclosureControl
from ..vocab.duo import GRU, HMB, NRES, POA
from .populations import TOTAL
from .store import ReferenceCounts

__all__ = [
    "BLOCKING_MODIFIERS",
    "RELEASE_PERMISSIONS",
    "PopulationFrequency",
    "faf95",
    "grpmax",
    "release_allowed",
    "released_arrays",
    "released_frequencies",
]

#: DUO permissions under which an open aggregate release is within the consent.
RELEASE_PERMISSIONS = frozenset({NRES, GRU, HMB, POA})
#: DUO modifiers that limit who may use the data or for what: an open release
#: would ignore them.
BLOCKING_MODIFIERS = frozenset(
    {
        "DUO:0000012",  # RS research specific restrictions
        "DUO:0000018",  # NPUNCU
        "DUO:0000020",  # COL collaboration required
        "DUO:0000021",  # IRB ethics approval required
        "DUO:0000022",  # GS geographical restriction
        "DUO:0000024",  # MOR publication moratorium
        "DUO:0000025",  # TS time limit on use
        "DUO:0000026",  # US user specific restriction
        "DUO:0000027",  # PS project specific restriction
        "DUO:0000028",  # IS institution specific restriction
        "DUO:0000044",  # NPOA population origins or ancestry research prohibited
        "DUO:0000045",  # NPU not for profit organisation use only
        "DUO:0000046",  # NCU non-commercial use only
    }
)
_CONFIDENCE = 0.95


@dataclasses.dataclass(frozen=True)
class PopulationFrequency:
    """The published numbers of one allele in one population."""

    population: str
    allele_count: int
    allele_number: int
    allele_count_hom: int  # copies in homozygous calls: 2 × nhomalt
    allele_count_het: int
    allele_count_hemi: int
    adjusted: bool

    @classmethod
    def of(
        cls, population: str, values: Sequence[int], *, adjusted: bool
    ) -> PopulationFrequency:
        """From ``(AC, AN, hom copies, het, hemi)``."""
        count, number, hom, het, hemi = (int(value) for value in values)
        return cls(population, count, number, hom, het, hemi, adjusted)

    @property
    def allele_frequency(self) -> float:
        return self.allele_count / self.allele_number if self.allele_number else 0.0

    @property
    def nhomalt(self) -> int:
        return self.allele_count_hom // 2

    @property
    def faf95(self) -> float:
        return float(faf95(self.allele_count, self.allele_number))

    def document(self) -> dict[str, Any]:
        """As JSON (the node's and network's ``/reference`` answers)."""
        return {
            "population": self.population,
            "alleleCount": self.allele_count,
            "alleleNumber": self.allele_number,
            "alleleFrequency": self.allele_frequency,
            "alleleCountHomozygous": self.allele_count_hom,
            "alleleCountHeterozygous": self.allele_count_het,
            "alleleCountHemizygous": self.allele_count_hemi,
            "nhomalt": self.nhomalt,
            "faf95": self.faf95,
            "adjusted": self.adjusted,
        }


def faf95(allele_count: Any, allele_number: Any) -> Any:
    """gnomAD's filtering allele frequency at 95 % (0 where AC or AN is 0).

    Works on numbers and arrays alike.
    """
    count = np.asarray(allele_count, dtype=np.float64)
    number = np.asarray(allele_number, dtype=np.float64)
    safe = np.maximum(count, 1.0)
    # P(X <= AC-1 | λ) = Q(AC, λ), the regularised upper incomplete gamma.
    rate = gammainccinv(safe, _CONFIDENCE)
    value = np.where((count > 0) & (number > 0), rate / np.maximum(number, 1.0), 0.0)
    return value if value.ndim else float(value)


def grpmax(frequencies: Iterable[PopulationFrequency]) -> PopulationFrequency | None:
    """The country population with the highest AF (ties: the larger AN, then the
    name), None when no country has the allele."""
    countries = [
        item
        for item in frequencies
        if len(item.population) == 2 and item.allele_count > 0
    ]
    if not countries:
        return None
    return max(
        countries,
        key=lambda item: (item.allele_frequency, item.allele_number, item.population),
    )


def release_allowed(
    security_level: str, data_use: Sequence[str], release_controlled: bool
) -> tuple[bool, str]:
    """Whether a dataset's reference may be published, and why not."""
    if security_level != "CONTROLLED":
        return True, ""
    if not release_controlled:
        return False, "CONTROLLED, and reference_release_controlled is off"
    terms = set(data_use)
    if not terms & RELEASE_PERMISSIONS:
        return (
            False,
            "CONTROLLED, and its DUO permission does not allow an open release",
        )
    blocked = sorted(terms & BLOCKING_MODIFIERS)
    if blocked:
        return False, f"CONTROLLED, and its DUO terms {', '.join(blocked)} forbid it"
    return True, ""


def _withheld(
    populations: list[str],
    population_samples: list[int],
    cell_samples: dict[str, int],
    floor: int,
) -> set[str]:
    """Populations too small to publish, with those they could be derived from."""
    small = {
        name
        for name, samples in zip(populations, population_samples, strict=True)
        if samples < floor
    }
    if any(0 < samples < floor for samples in cell_samples.values()):
        small |= {name for name in populations if name.endswith(("_M", "_F"))}
        small |= {"M", "F"}
    countries = [name for name in populations if len(name) == 2]
    if any(name in small for name in countries) and TOTAL in populations:
        small |= set(countries)
    return small


def released_arrays(
    counts: dict[str, np.ndarray],
    populations: Sequence[str],
    population_samples: Sequence[int],
    cell_samples: dict[str, int],
    control: DisclosureControl,
    *,
    exact: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The small-count rule over arrays of counts (population on the last axis).

    ``counts`` holds ``allele_count``, ``allele_count_hom`` (copies),
    ``allele_count_het``, ``allele_count_hemi`` of shape ``(..., pops)`` and
    ``allele_number`` broadcastable to it. Every value below the floor goes
    through :meth:`DisclosureControl.release_total` (one call per distinct small
    value: the rule is a function of the value alone), so that a whole block is
    released at once. Returns the released arrays (``allele_count_hom`` still in
    copies, twice the released homozygous people), the populations published
    (bool by population) and where a count was adjusted (bool, ``(..., pops)``).
    """
    names = ("allele_count", "allele_count_het", "allele_count_hemi", "allele_number")
    shape = np.broadcast_shapes(*(np.shape(counts[name]) for name in counts))
    apply = control.enabled and not exact
    published = np.ones(len(populations), dtype=bool)
    adjusted = np.zeros(shape, dtype=bool)
    values = {
        name: np.broadcast_to(counts[name], shape).astype(np.int64) for name in counts
    }
    values["allele_count_hom"] = values["allele_count_hom"] // 2  # people
    if not apply:
        values["allele_count_hom"] = values["allele_count_hom"] * 2
        return values, published, adjusted
    floor = control.settings.floor
    hidden = _withheld(list(populations), list(population_samples), cell_samples, floor)
    published = np.array([name not in hidden for name in populations], dtype=bool)
    table = np.array(
        [int(control.release_total(value).value) for value in range(floor)] or [0],
        dtype=np.int64,
    )
    for name in (*names, "allele_count_hom"):
        array = values[name]
        small = array < floor
        released = np.where(small, table[np.minimum(array, len(table) - 1)], array)
        adjusted |= released != array
        values[name] = released
    values["allele_count_hom"] = values["allele_count_hom"] * 2
    return values, published, adjusted


def released_frequencies(
    counts: ReferenceCounts,
    control: DisclosureControl,
    *,
    exact: bool = False,
) -> list[PopulationFrequency]:
    """The populations of one allele as they may be published.

    ``exact``: the caller may see the dataset's records (a granted caller): the
    true counts. Otherwise the small-count rule of ``control`` (nothing changes
    when the layer is off).
    """
    values, published, adjusted = released_arrays(
        {
            "allele_count": counts.allele_count,
            "allele_count_hom": counts.allele_count_hom,
            "allele_count_het": counts.allele_count_het,
            "allele_count_hemi": counts.allele_count_hemi,
            "allele_number": counts.allele_number,
        },
        counts.populations,
        counts.population_samples,
        counts.cell_samples,
        control,
        exact=exact,
    )
    return [
        PopulationFrequency(
            population=name,
            allele_count=int(values["allele_count"][index]),
            allele_number=int(values["allele_number"][index]),
            allele_count_hom=int(values["allele_count_hom"][index]),
            allele_count_het=int(values["allele_count_het"][index]),
            allele_count_hemi=int(values["allele_count_hemi"][index]),
            adjusted=bool(adjusted[index]),
        )
        for index, name in enumerate(counts.populations)
        if published[index]
    ]
