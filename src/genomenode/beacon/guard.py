"""The Beacon's side of disclosure control: its questions as the layer sees them.

The engine finds the true answer of each dataset; :class:`Guard` hands it to the
one disclosure layer (:class:`~genomenode.disclosure.control.DisclosureControl`)
with plain values (the caller's budget key and kind, the dataset, the canonical
question) and keeps what may be released. What kind of aggregate a dataset's
answer is decides the entry point:

- ``total``: every individual (or variant) of the dataset, nothing selected:
  published facts, released as they are;
- ``presence``: variants in the dataset, no people selected: the rare-allele
  policy (applied while matching) and the budget;
- ``people``: people selected by filters or by carrying a variant: a noisy count
  or yes/no;
- ``carried``: variants carried by someone among people the filters select: a
  noisy count or yes/no (a per-person answer when the subset is small);
- ``collection``: whether a dataset holds anyone matching the filters: a noisy
  yes/no over the subset's size (its count is 0 or 1 dataset).

With the layer off, only counts of people keep the old floor.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import numpy as np

from ..access import Caller, caller_kind
from ..disclosure.control import Asked, DisclosureControl, Release
from ..store.published import PublishedDataset
from .query import BeaconRequest

__all__ = ["Guard", "canonical_question"]


def canonical_question(request: BeaconRequest, scope: Any) -> str:
    """The question in one spelling: entry type and path, the filters (sorted:
    they combine with AND) and the variant query; paging, granularity and test
    mode do not change the answer and are left out."""
    variant = None
    if request.variant is not None:
        fields = dataclasses.asdict(request.variant)
        fields.pop("reference_name_original", None)
        variant = fields
    filters = sorted(
        json.dumps(dataclasses.asdict(item), sort_keys=True, default=str)
        for item in request.filters
    )
    return json.dumps(
        {
            "scope": dataclasses.asdict(scope),
            "filters": filters,
            "variant": variant,
        },
        sort_keys=True,
        default=str,
    )


@dataclasses.dataclass
class Guard:
    """One request's disclosure control.

    Attributes
    ----------
    control
        The node's disclosure layer.
    identity
        The caller's budget key.
    caller
        Who asks (for the caller kind per dataset).
    question
        The request and its path scope (:func:`canonical_question` of them is
        :attr:`canonical`, computed only for answers that are perturbed).
    """

    control: DisclosureControl
    identity: str
    caller: Caller
    question: tuple[BeaconRequest, Any]
    #: Alleles the rare-allele policy answered as absent, by dataset (audited).
    hidden: dict[str, int] = dataclasses.field(default_factory=dict)

    @functools.cached_property
    def canonical(self) -> str:
        """:func:`canonical_question` of the request, when first needed."""
        return canonical_question(*self.question)

    def applies(self, allowed: str) -> bool:
        """Whether the layer changes anything for a caller allowed ``allowed``."""
        return self.control.enabled and allowed != "record"

    def asked(
        self,
        handle: PublishedDataset,
        allowed: str,
        filtered: bool,
        counted: str | None = None,
    ) -> Asked:
        """What is asked of one dataset. The layer knows three kinds of caller:
        one allowed the dataset's records (whatever it asked for now) is
        ``granted`` and gets the truth; one granted the dataset but allowed less
        (its ``beacon`` block says so) is perturbed as ``registered``."""
        kind = caller_kind(self.caller, handle.id)
        if allowed == "record":
            kind = "granted"
        elif kind == "granted":
            kind = "registered"
        return Asked(
            identity=self.identity,
            caller_kind=kind,
            dataset_id=handle.id,
            security_level=handle.facts.security_level,
            # A count of people is asked of the people counted: every spelling
            # of a question that selects them gets the same noise.
            canonical=counted or self.canonical,
            # The data's version: a re-ingested dataset gets fresh noise, an
            # access change does not (it would let repeats be averaged).
            generation=str(handle.facts.created_at),
            filtered=filtered,
            individuals=handle.facts.num_individuals or handle.facts.num_samples,
        )

    def hides(
        self, handle: PublishedDataset, allowed: str, allele_count: int, total: int
    ) -> bool:
        """Whether the rare-allele policy answers one allele as absent."""
        hidden = self.control.hides(
            self.asked(handle, allowed, filtered=False), allele_count, total
        )
        if hidden:
            self.hidden[handle.id] = self.hidden.get(handle.id, 0) + 1
        return hidden

    def hides_many(
        self,
        handle: PublishedDataset,
        allowed: str,
        allele_counts: np.ndarray,
        totals: np.ndarray,
    ) -> np.ndarray:
        """:meth:`hides` of many alleles at once (boolean array)."""
        hidden = self.control.hides_many(
            self.asked(handle, allowed, filtered=False), allele_counts, totals
        )
        number = int(hidden.sum())
        if number:
            self.hidden[handle.id] = self.hidden.get(handle.id, 0) + number
        return hidden

    def release(
        self,
        handle: PublishedDataset,
        *,
        kind: str,
        granularity: str,
        allowed: str,
        count: int,
        filtered: bool,
        allele_count: int | None,
        counted: str | None = None,
    ) -> Release:
        """What may be released of one dataset's true ``count`` (``counted``:
        the set of people it counts, as :func:`~.engine` digests it)."""
        if granularity == "record":
            return Release(count, exact=True)
        if kind == "total":
            return self.control.release_total(count)
        if not self.control.enabled and kind != "people":
            return Release(count, exact=True)
        asked = self.asked(handle, allowed, filtered, counted)
        if kind == "presence":
            return self.control.release_presence(
                asked, count, allele_count=allele_count
            )
        if granularity == "boolean" or kind == "collection":
            return self.control.release_boolean(asked, count, allele_count=allele_count)
        return self.control.release_count(asked, count, allele_count=allele_count)
