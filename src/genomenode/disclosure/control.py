"""The one disclosure-control layer: every aggregate a node releases passes here.

One entry point per kind of aggregate, each taking what was asked
(:class:`Asked`: plain values, no request, no caller object) and the true value,
and returning what may be released (:class:`Release`):

- :meth:`DisclosureControl.release_count`: a count of people;
- :meth:`DisclosureControl.release_boolean`: whether any such person exists;
- :meth:`DisclosureControl.release_presence`: whether variants are in a dataset
  (no people selected: only the rare-allele policy and the budget apply);
- :meth:`DisclosureControl.release_frequency`: an allele frequency;
- :meth:`DisclosureControl.check_subset`: whether a filtered subset is large
  enough to compute on (DataSHIELD ``nfilter.subset``).

In order, for a caller below record granularity (granted callers get the truth):
the rare-allele policy, the budget (one conditional UPDATE, :mod:`.budgets`), then
noise drawn from a keyed hash of the question (:mod:`.noise`; the same question
gets the same answer), rounding and the small-count floor. With
``disclosure_enabled`` false only the floor of ``beacon_count_threshold`` and the
subset rule remain (what the node did before this layer).

Fails closed: any error inside becomes a :class:`Release` withheld for
``"error"``. Nothing here writes the audit: the caller does, from
:attr:`Release.withheld`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pathlib
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from .budgets import Budgets
from .noise import NoiseKey, laplace, uniform
from .settings import DisclosureSettings

__all__ = ["ANONYMOUS_POOL", "KEY_FILENAME", "Asked", "DisclosureControl", "Release"]

#: The disclosure key's file in the node's keys directory.
KEY_FILENAME = "disclosure.key"

#: The budget identity every anonymous caller also spends (with
#: ``disclosure_anonymous_epsilon_budget``); no passport or address looks like it.
ANONYMOUS_POOL = "anonymous:*"

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Asked:
    """Who asks what, as plain values.

    Attributes
    ----------
    identity
        The caller's budget key (:func:`~genomenode.disclosure.identity.identity_key`).
    caller_kind
        ``"anonymous"``, ``"registered"`` or ``"granted"`` (for this dataset).
    dataset_id, security_level
        The dataset answering, and its security level.
    canonical
        The question in one spelling (normalised filters, variant, entry type):
        with ``dataset_id`` and ``generation`` it fixes the noise.
    generation
        The version of the dataset's data (e.g. when it was ingested): the noise
        changes when the data do, and only then.
    filtered
        The aggregate is over people chosen by filters: a zero is perturbed too
        (a zero over the whole dataset is left alone: it says nothing of a person
        that the rare-allele policy has not already decided).
    individuals
        How many people the dataset holds (None: unknown), for the weighted cost
        of answers about people (``disclosure_small_dataset_individuals``).
    """

    identity: str
    caller_kind: str
    dataset_id: str
    security_level: str
    canonical: str
    generation: str | int = 0
    filtered: bool = True
    individuals: int | None = None


@dataclasses.dataclass(frozen=True)
class Release:
    """What may be released of one aggregate.

    Attributes
    ----------
    value
        The released value; None when withheld.
    exact
        ``value`` is the true value.
    adjusted
        A count reported as the floor: "fewer than or equal to" it.
    withheld
        Why nothing (or less) is released: ``"rare-allele"``, ``"budget"``,
        ``"subset"``, ``"error"``; None when released.
    retry_after
        Seconds until the budget allows this again (``"budget"`` only).
    epsilon
        The privacy loss charged to the caller.
    """

    value: Any
    exact: bool = False
    adjusted: bool = False
    withheld: str | None = None
    retry_after: int | None = None
    epsilon: float = 0.0


class DisclosureControl:
    """The disclosure layer of one node (built once per process).

    Parameters
    ----------
    settings
        What to apply.
    engine
        The node's database (budgets).
    keys_directory
        Where the disclosure key is (created on first use).
    """

    def __init__(
        self,
        settings: DisclosureSettings,
        engine: Engine | None,
        keys_directory: pathlib.Path,
    ) -> None:
        self.settings = settings
        self.budgets = Budgets(
            engine,
            budget=settings.epsilon_budget,
            window_seconds=settings.budget_window_seconds,
        )
        #: The budget identity anonymous callers share (the operator's attack tool
        #: gives its run a pool of its own, so as not to spend the real one).
        self.anonymous_pool = ANONYMOUS_POOL
        self._key_path = keys_directory / KEY_FILENAME
        self._key: NoiseKey | None = None

    @classmethod
    def off(cls, count_threshold: int = 5) -> DisclosureControl:
        """The layer switched off: only the legacy floor and subset rule (no
        database, no key). For tools and tests that read answers directly."""
        settings = DisclosureSettings(enabled=False, count_threshold=count_threshold)
        return cls(settings, None, pathlib.Path("/nonexistent"))

    @classmethod
    def for_node(
        cls, values: Any, engine: Engine, keys_directory: pathlib.Path
    ) -> DisclosureControl:
        """The layer of a node, from its resolved settings (``config.values``)."""
        return cls(DisclosureSettings.from_values(values), engine, keys_directory)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def key(self) -> NoiseKey:
        if self._key is None:
            self._key = NoiseKey.load_or_create(self._key_path)
        return self._key

    # -- the entry points ---------------------------------------------------------

    def check_subset(self, size: int | None) -> Release:
        """Whether an answer about genotypes below record granularity may be
        computed on a filtered subset of ``size`` people (None: not filtered):
        "does anyone with this rare phenotype carry this variant?" answered for
        one or two people is their genotype. Applies with the layer off too (the
        floor ``beacon_count_threshold`` then)."""
        least = (
            self.settings.min_subset
            if self.settings.enabled
            else self.settings.count_threshold
        )
        if size is not None and 0 < size < least:
            return Release(False, withheld="subset")
        return Release(True, exact=True)

    def release_total(self, count: int) -> Release:
        """A whole-dataset total (individuals in a dataset, its variants): a
        published fact, no budget and no noise, but a non-zero total below the
        floor is shown as the floor (a dataset of two people says "at most 5")."""
        if self.settings.enabled and 0 < count < self.settings.floor:
            return Release(self.settings.floor, adjusted=True)
        return Release(count, exact=True)

    def release_count(
        self,
        asked: Asked,
        true_count: int,
        *,
        allele_count: int | None = None,
        allele_number: int | None = None,
    ) -> Release:
        """A count of people, perturbed for this caller.

        ``allele_count``/``allele_number``: of the variant the count is about (if
        any), for the rare-allele policy and the weighted cost.
        """
        return self._guarded(
            self._count, asked, true_count, allele_count, allele_number
        )

    def release_boolean(
        self,
        asked: Asked,
        true_count: int,
        *,
        allele_count: int | None = None,
        allele_number: int | None = None,
    ) -> Release:
        """Whether ``true_count`` people exist, perturbed for this caller."""
        return self._guarded(
            self._boolean, asked, true_count, allele_count, allele_number
        )

    def release_presence(
        self,
        asked: Asked,
        num_present: int,
        *,
        allele_count: int | None = None,
    ) -> Release:
        """How many of the asked variants are in the dataset (no people selected);
        the caller has left out the variants the rare-allele policy hides
        (:meth:`hides`). Charged, not perturbed."""
        return self._guarded(self._presence, asked, num_present, allele_count, None)

    def release_frequency(
        self, asked: Asked, allele_count: int, allele_number: int
    ) -> Release:
        """An allele frequency ``allele_count / allele_number``, perturbed."""
        return self._guarded(
            self._frequency, asked, allele_count, allele_count, allele_number
        )

    def hides(self, asked: Asked, allele_count: int, allele_number: int) -> bool:
        """Whether the rare-allele policy answers this variant as absent."""
        return (
            self.settings.enabled
            and asked.caller_kind != "granted"
            and self.settings.is_rare(allele_count, allele_number)
        )

    def hides_many(
        self, asked: Asked, allele_counts: np.ndarray, allele_numbers: np.ndarray
    ) -> np.ndarray:
        """:meth:`hides` of many variants at once (boolean array)."""
        if not self.settings.enabled or asked.caller_kind == "granted":
            return np.zeros(len(allele_counts), dtype=bool)
        return self.settings.are_rare(allele_counts, allele_numbers)

    # -- the mechanisms ---------------------------------------------------------

    def _guarded(self, mechanism: Any, asked: Asked, *values: Any) -> Release:
        try:
            release: Release = mechanism(asked, *values)
        except Exception:
            # Fail closed: whatever went wrong, nothing is released.
            _log.exception("disclosure control failed; the aggregate is withheld")
            return Release(None, withheld="error")
        return release

    def _passes(self, asked: Asked) -> bool:
        """True when the caller gets the truth (layer off, or records granted)."""
        return not self.settings.enabled or asked.caller_kind == "granted"

    def _epsilon(
        self, asked: Asked, allele_count: int | None, *, presence: bool = False
    ) -> float:
        """What one answer costs: presence answers (no people selected) by the
        variant's rarity, answers about people by the dataset's size too."""
        if presence:
            return self.settings.presence_epsilon * self.settings.cost(allele_count)
        units = self.settings.cost(allele_count, asked.individuals)
        return self.settings.epsilon_per_query * units

    def _charge(
        self, asked: Asked, allele_count: int | None, *, presence: bool = False
    ) -> Release | None:
        epsilon = self._epsilon(asked, allele_count, presence=presence)
        charged = self.budgets.charge(asked.identity, asked.dataset_id, epsilon)
        if charged.allowed and asked.caller_kind == "anonymous" and not presence:
            # Anonymous callers are addresses, and addresses are cheap: counts and
            # answers about people also spend one pool all of them share.
            charged = self.budgets.charge(
                self.anonymous_pool,
                asked.dataset_id,
                epsilon,
                budget=self.settings.anonymous_epsilon_budget,
            )
        if not charged.allowed:
            return Release(None, withheld="budget", retry_after=charged.retry_after)
        return None

    def _message(self, asked: Asked) -> str:
        return f"{asked.dataset_id}\x1f{asked.generation}\x1f{asked.canonical}"

    def _noisy(self, asked: Asked, true_count: int) -> float:
        scale = 1.0 / self.settings.epsilon_per_query
        return true_count + laplace(self.key, self._message(asked), scale, "count")

    def _floored(self, count: int) -> Release:
        """The legacy floor: 0 < count < threshold is reported as the threshold."""
        if 0 < count < self.settings.count_threshold:
            return Release(self.settings.count_threshold, adjusted=True)
        return Release(count, exact=True)

    def _count(
        self,
        asked: Asked,
        true_count: int,
        allele_count: int | None,
        allele_number: int | None,
    ) -> Release:
        if asked.caller_kind == "granted" or not self.settings.enabled:
            # A count of people below records keeps the floor even for a caller
            # who may see the records: what the node always did.
            return self._floored(true_count)
        if (
            allele_count is not None
            and allele_number is not None
            and self.hides(asked, allele_count, allele_number)
        ):
            return Release(0, withheld="rare-allele")
        refused = self._charge(asked, allele_count)
        if refused is not None:
            return refused
        epsilon = self._epsilon(asked, allele_count)
        if true_count == 0 and not asked.filtered:
            return Release(0, exact=True, epsilon=epsilon)
        step = self.settings.count_rounding
        rounded = round(self._noisy(asked, true_count) / step) * step
        floor = self.settings.floor
        if rounded <= 0:
            return Release(0, epsilon=epsilon)
        if rounded < floor:
            return Release(floor, adjusted=True, epsilon=epsilon)
        return Release(rounded, exact=rounded == true_count, epsilon=epsilon)

    def _boolean(
        self,
        asked: Asked,
        true_count: int,
        allele_count: int | None,
        allele_number: int | None,
    ) -> Release:
        if self._passes(asked):
            return Release(true_count > 0, exact=True)
        if (
            allele_count is not None
            and allele_number is not None
            and self.hides(asked, allele_count, allele_number)
        ):
            return Release(False, withheld="rare-allele")
        refused = self._charge(asked, allele_count)
        if refused is not None:
            return refused
        epsilon = self._epsilon(asked, allele_count)
        if true_count == 0 and not asked.filtered:
            return Release(False, exact=True, epsilon=epsilon)
        if self.settings.boolean_mechanism == "randomized-response":
            # Al Aziz et al. 2017: the truth with probability e^ε / (1 + e^ε).
            flip = 1.0 / (1.0 + math.exp(self.settings.epsilon_per_query))
            truth = true_count > 0
            draw = uniform(self.key, self._message(asked), "boolean")
            value = (not truth) if draw < flip else truth
        else:
            # Over a filtered subset a zero is perturbed too: twice the floor
            # keeps false "yes" for an empty subset near 0.3 % (Laplace tail).
            cut = self.settings.floor * (2 if asked.filtered else 1)
            value = self._noisy(asked, true_count) >= cut
        return Release(value, exact=value == (true_count > 0), epsilon=epsilon)

    def _presence(
        self,
        asked: Asked,
        num_present: int,
        allele_count: int | None,
        _unused: None,
    ) -> Release:
        if self._passes(asked):
            return Release(num_present, exact=True)
        refused = self._charge(asked, allele_count, presence=True)
        if refused is not None:
            return refused
        epsilon = self._epsilon(asked, allele_count, presence=True)
        return Release(num_present, exact=True, epsilon=epsilon)

    def _frequency(
        self,
        asked: Asked,
        allele_count: int,
        _allele_count: int,
        allele_number: int,
    ) -> Release:
        if allele_number <= 0:
            return Release(None, withheld="subset")
        if self._passes(asked):
            return Release(allele_count / allele_number, exact=True)
        if self.hides(asked, allele_count, allele_number):
            return Release(None, withheld="rare-allele")
        refused = self._charge(asked, allele_count)
        if refused is not None:
            return refused
        epsilon = self._epsilon(asked, allele_count)
        noisy = round(self._noisy(asked, allele_count))
        noisy = min(max(noisy, 0), allele_number)
        return Release(
            noisy / allele_number, exact=noisy == allele_count, epsilon=epsilon
        )
