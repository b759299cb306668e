"""Answer one Beacon request: which datasets, which entries, how much to show.

The engine works per dataset. For each published dataset it asks the access
decision (:func:`genomenode.access.allowed_granularity`) how much the caller may
see; a dataset the caller may not query is skipped before anything is read. It then
finds the matching entries:

- *individuals* are selected by the filters (SQL, :mod:`.filters`), by a variant
  query (the carriers of the matching alleles, from the by-variant genotype rows),
  and by the path (``/individuals/{id}``, ``/g_variants/{id}/individuals`` ...);
  the selections are intersected (filters combine with AND);
- *biosamples*, *runs* and *analyses* follow their individual (one biosample per
  genotyped individual, one run and one analysis per biosample: the node holds a
  joint-called VCF, not per-sample run records);
- *g_variants* are (row, allele) pairs found by binary search on the sorted
  positions (:mod:`.variants`), kept only if a selected individual carries them
  when individuals are restricted;
- *datasets* and *cohorts* are collections: each dataset is one of each.

The result is a :class:`Answer` of per-dataset counts and, at record granularity,
one page of matching keys; :mod:`.responses` turns it into the Beacon document.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading
import weakref
from collections.abc import Collection, Mapping, Sequence

import numpy as np

from ..access import Caller, allowed_granularity
from ..access.decision import GRANULARITY_ORDER, dataset_access, lower_granularity
from ..disclosure.control import DisclosureControl
from ..errors import BeaconRequestError, NotFoundError
from ..store.genes import gene_table_for
from ..store.published import PublishedDataset, PublishedDatasets
from ..vocab.contigs import assembly_matches
from . import filters as beacon_filters
from . import variants as beacon_variants
from .guard import Guard
from .query import BeaconRequest, Filter, Granularity, VariantQuery

__all__ = [
    "COLLECTIONS",
    "ENTRY_TYPES",
    "MAX_PAGE_SIZE",
    "Answer",
    "DatasetAnswer",
    "PathScope",
    "answer",
    "individuals_matching",
    "page_bounds",
    "parse_variant_id",
    "variant_id",
]

ENTRY_TYPES = (
    "g_variants",
    "individuals",
    "biosamples",
    "runs",
    "analyses",
    "datasets",
    "cohorts",
)
COLLECTIONS = ("datasets", "cohorts")
# Entry types whose entries hang off one biosample (and so one individual).
_PER_BIOSAMPLE = ("biosamples", "runs", "analyses")
#: The most records one result set returns (``limit`` 0 or above asks for more).
MAX_PAGE_SIZE = 10_000
# The run and the analysis of a biosample are named after it.
_ID_SUFFIX = {"runs": "-run", "analyses": "-analysis"}

VariantKey = tuple[int, int]  # (row, allele index)

# Filter answers kept per dataset (each a set of individual ids).
_MATCHED_CACHE = 256
_MatchedCache = collections.OrderedDict[
    tuple[tuple[Filter, ...], str], frozenset[str] | None
]
# One cache per published dataset, gone with it (a changed dataset is a new one).
_MATCHED: weakref.WeakKeyDictionary[PublishedDataset, _MatchedCache] = (
    weakref.WeakKeyDictionary()
)
_MATCHED_LOCK = threading.Lock()


def individuals_matching(
    handle: PublishedDataset, filters: Sequence[Filter], entry_type: str
) -> frozenset[str] | None:
    """:func:`.filters.individuals_matching` on one published dataset, memoised.

    A published dataset never changes, so the individuals a set of filters
    selects can be kept; the most recent ``_MATCHED_CACHE`` answers are.
    """
    if not filters:
        return None
    key = (tuple(filters), entry_type)
    with _MATCHED_LOCK:
        matched = _MATCHED.setdefault(handle, collections.OrderedDict())
        if key in matched:
            matched.move_to_end(key)
            return matched[key]
    with handle.node.session() as session:
        found = beacon_filters.individuals_matching(
            session, handle.id, filters, entry_type=entry_type
        )
    with _MATCHED_LOCK:
        matched[key] = found
        if len(matched) > _MATCHED_CACHE:
            matched.popitem(last=False)
    return found


@dataclasses.dataclass(frozen=True)
class PathScope:
    """What the URL path says: ``/{entry}/{entry_id}`` or a nested path.

    ``/g_variants/{id}/individuals`` is ``PathScope("individuals", parent_type=
    "g_variants", parent_id=id)``; ``/individuals/{id}`` is ``PathScope(
    "individuals", entry_id=id)``.
    """

    entry_type: str
    entry_id: str | None = None
    parent_type: str | None = None
    parent_id: str | None = None


@dataclasses.dataclass
class DatasetAnswer:
    """One dataset's part of an answer.

    ``count`` is the true count; ``reported`` what disclosure control releases
    (``adjusted``: reported as the small-count floor, "fewer or equal"), and
    ``exists`` the released yes/no. ``kind`` says what the count counts (see
    :mod:`.guard`).
    """

    dataset: PublishedDataset
    granularity: Granularity
    count: int
    keys: list[object] = dataclasses.field(default_factory=list)
    kind: str = "people"
    counted: str | None = None
    reported: int | None = None
    adjusted: bool = False
    exists: bool | None = None

    @property
    def released_count(self) -> int:
        return self.count if self.reported is None else self.reported

    @property
    def released_exists(self) -> bool:
        return self.count > 0 if self.exists is None else self.exists


@dataclasses.dataclass
class Answer:
    """What the engine found, before it becomes a Beacon document."""

    scope: PathScope
    request: BeaconRequest
    granularity: Granularity
    datasets: list[DatasetAnswer]
    # Visible datasets that answer below the returned granularity (left out).
    lower_datasets: list[str] = dataclasses.field(default_factory=list)
    # Datasets left out because the answer would single out fewer people than
    # the small-count threshold (the disclosure layer's subset rule).
    suppressed_datasets: list[str] = dataclasses.field(default_factory=list)
    # Datasets whose answer disclosure control withheld: id -> reason
    # ("budget", "error"); retry_after: seconds until the budget allows more.
    withheld_datasets: dict[str, str] = dataclasses.field(default_factory=dict)
    retry_after: int | None = None


def variant_id(handle: PublishedDataset, row: int, allele: int) -> str:
    """The node's id of a variant: ``<contig>-<POS>-<REF>-<ALT>`` (gnomAD style)."""
    store = handle.store
    alleles = store.alleles(row, row + 1)[0]
    contig = _contig_of_row(handle, row)
    position = int(store.positions(row, row + 1)[0])
    return f"{contig}-{position}-{alleles[0]}-{alleles[allele]}"


def parse_variant_id(text: str) -> tuple[str, int, str, str]:
    """Split a variant id into (contig, POS, REF, ALT); contigs may contain ``-``."""
    parts = text.rsplit("-", 3)
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2] or not parts[3]:
        raise NotFoundError(f"no variant {text!r}: ids look like 22-16050075-A-G")
    return parts[0], int(parts[1]), parts[2], parts[3]


def _contig_of_row(handle: PublishedDataset, row: int) -> str:
    for name, (first, last) in handle.store.contigs.items():
        if first <= row < last:
            return name
    raise NotFoundError(f"no variant row {row} in dataset {handle.id!r}")


def _find_variant(handle: PublishedDataset, text: str) -> list[VariantKey]:
    contig, position, reference, alternate = parse_variant_id(text)
    return beacon_variants.alleles_with_id(
        handle.store, contig, position, reference, alternate, handle.facts.assembly
    )


def _variant_matches(
    handle: PublishedDataset, query: VariantQuery
) -> list[VariantKey] | None:
    """Matches of a variant query in one dataset; None if the dataset cannot answer."""
    if query.kind == "hgvs":
        # The accession's version names the assembly: resolve before matching it.
        query = beacon_variants.resolve_hgvs(query)
    if not assembly_matches(query.assembly_id, handle.facts.assembly):
        return None
    table = None
    if query.kind == "gene":
        table = gene_table_for(handle.node, handle.id)
    return beacon_variants.matching_variants(
        handle.store, query, genes=table, assembly=handle.facts.assembly
    )


def _carriers(handle: PublishedDataset, keys: Sequence[VariantKey]) -> set[str]:
    """Individuals carrying at least one copy of any of the alleles."""
    individuals: set[str] = set()
    names = handle.sample_individuals
    for row, allele in keys:
        samples = handle.store.carriers(row, allele)
        individuals.update(str(name) for name in names[samples] if name is not None)
    return individuals


def _allele_count(handle: PublishedDataset, key: VariantKey) -> tuple[int, int]:
    """(AC, AN) of one allele in the dataset, from the stored statistics (the
    slow twin of :func:`_allele_counts`)."""
    row, allele = key
    store = handle.store
    counts = store.read("variant_allele_count", row, row + 1)[0]
    total = int(store.read("variant_allele_total", row, row + 1)[0])
    return int(counts[allele]), total


def _allele_counts(
    handle: PublishedDataset, keys: Sequence[VariantKey]
) -> tuple[np.ndarray, np.ndarray]:
    """(AC, AN) of many alleles at once: one read of the rows they span."""
    rows = np.fromiter((row for row, _ in keys), dtype=np.int64, count=len(keys))
    alleles = np.fromiter(
        (allele for _, allele in keys), dtype=np.int64, count=len(keys)
    )
    first, stop = int(rows.min()), int(rows.max()) + 1
    store = handle.store
    counts = store.read("variant_allele_count", first, stop)[rows - first, alleles]
    totals = store.read("variant_allele_total", first, stop)[rows - first]
    return counts.astype(np.int64), totals.astype(np.int64)


def _intersect(first: set[str] | None, second: set[str] | None) -> set[str] | None:
    if first is None:
        return second
    if second is None:
        return first
    return first & second


def _biosample_of(entry_type: str, entry_id: str) -> str:
    suffix = _ID_SUFFIX.get(entry_type, "")
    if suffix and entry_id.endswith(suffix):
        return entry_id[: -len(suffix)]
    return entry_id if not suffix else "\0no such biosample"


def per_biosample_id(entry_type: str, biosample_id: str) -> str:
    """Id of the run or analysis of a biosample (the biosample id for biosamples)."""
    suffix = _ID_SUFFIX.get(entry_type, "")
    return f"{biosample_id}{suffix}"


class _DatasetQuery:
    """The selections of one dataset for one request."""

    def __init__(
        self,
        handle: PublishedDataset,
        request: BeaconRequest,
        scope: PathScope,
        guard: Guard | None = None,
        allowed: Granularity = "record",
    ) -> None:
        self.handle = handle
        self.request = request
        self.scope = scope
        self.guard = guard
        self.allowed = allowed
        #: The lowest allele count among the visible matched alleles (the
        #: weighted cost of the answer).
        self.min_allele_count: int | None = None
        self._keys: list[VariantKey] | None = None
        self._keys_found = False

    def individuals(self) -> set[str] | None:
        """Individuals selected by filters, variant query and path; None: all."""
        selected: set[str] | None = None
        # Filters on a collection select the individuals it must contain.
        entry = self.scope.entry_type
        matched = individuals_matching(
            self.handle,
            self.request.filters,
            "individuals" if entry in COLLECTIONS else entry,
        )
        if matched is not None:
            selected = set(matched)
        scope = self.scope
        if scope.entry_type == "individuals" and scope.entry_id is not None:
            selected = _intersect(selected, {scope.entry_id})
        if scope.entry_type in _PER_BIOSAMPLE and scope.entry_id is not None:
            biosample = _biosample_of(scope.entry_type, scope.entry_id)
            selected = _intersect(selected, self._individual_of_biosample(biosample))
        if scope.parent_type == "individuals":
            selected = _intersect(selected, {scope.parent_id or ""})
        elif scope.parent_type in _PER_BIOSAMPLE:
            biosample = _biosample_of(scope.parent_type, scope.parent_id or "")
            selected = _intersect(selected, self._individual_of_biosample(biosample))
        if scope.entry_type != "g_variants":
            keys = self.variant_keys()
            if keys is not None:
                selected = _intersect(selected, _carriers(self.handle, keys))
        return selected

    def _individual_of_biosample(self, biosample: str) -> set[str]:
        index = self.handle.individual_samples.get(biosample)
        if index is None:
            return set()
        return {str(self.handle.sample_individuals[index])}

    def variant_keys(self) -> list[VariantKey] | None:
        """Variants selected by the query and the path, less those the rare-allele
        policy hides from this caller; None: not restricted."""
        if not self._keys_found:
            self._keys = self._visible(self._matched_keys())
            self._keys_found = True
        return self._keys

    def _visible(self, keys: list[VariantKey] | None) -> list[VariantKey] | None:
        if keys is None or self.guard is None or not self.guard.applies(self.allowed):
            return keys
        if not keys:
            return keys
        allele_counts, totals = _allele_counts(self.handle, keys)
        hidden = self.guard.hides_many(self.handle, self.allowed, allele_counts, totals)
        # Hidden alleles are answered as absent whatever the truth: that reveals
        # nothing and costs nothing more.
        visible = [
            key for key, hide in zip(keys, hidden.tolist(), strict=True) if not hide
        ]
        if visible:
            least = int(allele_counts[~hidden].min())
            if self.min_allele_count is None or least < self.min_allele_count:
                self.min_allele_count = least
        return visible

    def _matched_keys(self) -> list[VariantKey] | None:
        keys: list[VariantKey] | None = None
        scope = self.scope
        if self.request.variant is not None:
            found = _variant_matches(self.handle, self.request.variant)
            keys = [] if found is None else found
        variant_ids = [
            identifier
            for kind, identifier in (
                (
                    "g_variants" if scope.entry_type == "g_variants" else "",
                    scope.entry_id,
                ),
                (scope.parent_type, scope.parent_id),
            )
            if kind == "g_variants" and identifier is not None
        ]
        for identifier in variant_ids:
            found = _find_variant(self.handle, identifier)
            keys = found if keys is None else [key for key in keys if key in found]
        return keys


def page_bounds(request: BeaconRequest) -> tuple[int, int]:
    """Records ``[first, stop)`` of the requested page of one result set.

    Beacon's ``skip`` counts pages, not records; ``limit`` 0 asks for everything,
    which is capped, like any larger limit, at :data:`MAX_PAGE_SIZE`.
    """
    size = MAX_PAGE_SIZE if request.limit == 0 else min(request.limit, MAX_PAGE_SIZE)
    first = request.skip * size
    return first, first + size


def _page(items: Sequence[object], request: BeaconRequest) -> list[object]:
    first, stop = page_bounds(request)
    return list(items[first:stop])


def _answer_dataset(
    handle: PublishedDataset,
    request: BeaconRequest,
    scope: PathScope,
    granularity: Granularity,
    guard: Guard | None = None,
    allowed: Granularity = "record",
) -> tuple[DatasetAnswer, int, int | None]:
    """The true answer of one dataset, the count disclosure control is asked to
    release for it, and the lowest allele count of the alleles it is about.
    For counts of people, ``DatasetAnswer.counted`` names them (the noise is
    drawn for that set of people, so rewording a question draws nothing new)."""
    query = _DatasetQuery(handle, request, scope, guard, allowed)
    record = granularity == "record"
    entry = scope.entry_type
    if entry in COLLECTIONS:
        wanted = scope.entry_id is None or scope.entry_id == handle.id
        selected = query.individuals() if request.filters else None
        matches = wanted and (selected is None or bool(selected))
        item = DatasetAnswer(
            handle, granularity, int(matches), [handle.id] if matches else []
        )
        if selected is None or not wanted:
            item.kind = "total"
            return item, item.count, None
        item.kind = "collection"
        item.counted = _digest(_individual_positions(handle), selected)
        return item, len(selected), query.min_allele_count
    if entry == "g_variants":
        item = _answer_variants(query, granularity)
        return item, item.count, query.min_allele_count
    individuals = query.individuals()
    if entry == "individuals":
        if individuals is None:
            count = handle.facts.num_individuals
            keys = _page(_all_individuals(handle), request) if record else []
        else:
            known = handle.individual_id_set
            ordered = sorted(name for name in individuals if name in known)
            count = len(ordered)
            keys = _page(ordered, request) if record else []
        item = DatasetAnswer(handle, granularity, count, keys)
        item.kind = "total" if individuals is None else "people"
        if individuals is not None:
            item.counted = _digest(_individual_positions(handle), ordered)
        return item, count, query.min_allele_count
    # biosamples, runs, analyses: one per genotyped individual's sample.
    samples = handle.individual_samples
    if individuals is None:
        biosamples = sorted(samples)
    else:
        biosamples = sorted(name for name in individuals if name in samples)
    if scope.entry_id is not None:
        biosample = _biosample_of(entry, scope.entry_id)
        biosamples = [name for name in biosamples if name == biosample]
    keys = _page(biosamples, request) if record else []
    item = DatasetAnswer(handle, granularity, len(biosamples), keys)
    item.kind = "total" if individuals is None and scope.entry_id is None else "people"
    item.counted = _digest(handle.individual_samples, biosamples)
    return item, item.count, query.min_allele_count


def _digest(positions: Mapping[str, int], names: Collection[str]) -> str:
    """One short text for a set of people (the noise of a count is drawn for it):
    a hash of their sorted positions in the dataset, which costs a fraction of
    hashing their sorted names."""
    array = np.fromiter(
        (positions.get(name, -1) for name in names), dtype=np.int64, count=len(names)
    )
    array.sort()
    return "people:" + hashlib.sha256(array.tobytes()).hexdigest()


_POSITIONS: weakref.WeakKeyDictionary[PublishedDataset, dict[str, int]] = (
    weakref.WeakKeyDictionary()
)


def _individual_positions(handle: PublishedDataset) -> dict[str, int]:
    """Individual id -> its position among the dataset's individuals (kept per
    handle: a published dataset never changes)."""
    found = _POSITIONS.get(handle)
    if found is None:
        found = {name: index for index, name in enumerate(_all_individuals(handle))}
        _POSITIONS[handle] = found
    return found


def _all_individuals(handle: PublishedDataset) -> list[str]:
    return sorted(handle.all_individual_ids)


def _answer_variants(query: _DatasetQuery, granularity: Granularity) -> DatasetAnswer:
    handle, request, scope = query.handle, query.request, query.scope
    keys = query.variant_keys()
    matched = individuals_matching(handle, request.filters, "g_variants")
    restriction: set[str] | None = set(matched) if matched is not None else None
    owner: str | None = None
    if scope.parent_type == "individuals":
        owner = scope.parent_id
    elif scope.parent_type in _PER_BIOSAMPLE:
        biosample = _biosample_of(scope.parent_type, scope.parent_id or "")
        found = query._individual_of_biosample(biosample)
        owner = next(iter(found)) if found else "\0nobody"
    if owner is not None:
        restriction = _intersect(restriction, {owner})
    if keys is None:
        if restriction is None:
            return dataclasses.replace(
                _all_variants(handle, request, granularity), kind="total"
            )
        if owner is None:
            raise BeaconRequestError(
                "g_variants with individual filters needs a variant query "
                "(referenceName with start/end, or geneId)",
                field="requestParameters",
            )
        return dataclasses.replace(
            _owner_variants(handle, request, granularity, owner, restriction),
            kind="total",
        )
    kind = "presence"
    if restriction is not None:
        keys = _carried_by(handle, keys, restriction)
        kind = "carried"
    record = granularity == "record"
    return DatasetAnswer(
        handle,
        granularity,
        len(keys),
        _page(keys, request) if record else [],
        kind=kind,
    )


def _carried_by(
    handle: PublishedDataset, keys: Sequence[VariantKey], individuals: set[str]
) -> list[VariantKey]:
    samples = np.array(
        sorted(
            handle.individual_samples[name]
            for name in individuals
            if name in handle.individual_samples
        ),
        dtype=np.int64,
    )
    kept: list[VariantKey] = []
    if len(samples) == 0:
        return kept
    for row, allele in keys:
        carriers = handle.store.carriers(row, allele)
        if np.intersect1d(carriers, samples, assume_unique=True).size:
            kept.append((row, allele))
    return kept


def _all_variants(
    handle: PublishedDataset, request: BeaconRequest, granularity: Granularity
) -> DatasetAnswer:
    """A non-filtered g_variants query: every (row, ALT) of the dataset."""
    count = handle.num_alleles
    keys: list[object] = []
    if granularity == "record":
        first, stop = page_bounds(request)
        keys = list(handle.allele_keys(first, stop - first))
    return DatasetAnswer(handle, granularity, count, keys)


def _owner_variants(
    handle: PublishedDataset,
    request: BeaconRequest,
    granularity: Granularity,
    owner: str,
    restriction: set[str] | None,
) -> DatasetAnswer:
    """Variants one individual carries: a scan of its genotype column."""
    sample = handle.individual_samples.get(owner)
    if sample is None or (restriction is not None and owner not in restriction):
        return DatasetAnswer(handle, granularity, 0, [])
    keys: list[object] = []
    count = 0
    first, stop = page_bounds(request)
    for key in handle.sample_variants(sample):
        if granularity == "record" and first <= count < stop:
            keys.append(key)
        count += 1
        if granularity == "boolean":
            break
    return DatasetAnswer(handle, granularity, count, keys)


_PER_INDIVIDUAL = ("individuals", *_PER_BIOSAMPLE)


def _names_one_person(scope: PathScope) -> bool:
    """True when the path addresses one individual (or its sample, run, analysis)."""
    return (scope.entry_type in _PER_INDIVIDUAL and scope.entry_id is not None) or (
        scope.parent_type in _PER_INDIVIDUAL
    )


def _involves_genotypes(request: BeaconRequest, scope: PathScope) -> bool:
    """True when the answer depends on who carries which variant."""
    return (
        request.variant is not None
        or scope.entry_type == "g_variants"
        or scope.parent_type == "g_variants"
    )


def answer(
    published: PublishedDatasets,
    request: BeaconRequest,
    scope: PathScope,
    caller: Caller,
    *,
    guard: Guard | None = None,
    threshold: int = 5,
) -> Answer:
    """Answer ``request`` for the datasets ``caller`` may query.

    The returned granularity is the lower of the requested one and the highest any
    visible dataset allows; datasets that allow less are left out of the answer
    and named in :attr:`Answer.lower_datasets` (their ids are already visible to
    this caller in ``/api/datasets``). Without filters, ``/datasets`` and
    ``/cohorts`` answer records of every visible dataset, whatever the requested
    granularity: they are catalogue metadata. A path that names one person
    (``/individuals/{id}/g_variants``...) is answered only by datasets that give
    this caller records: anything less would still disclose that person's data.

    Below records, every dataset's answer passes disclosure control (``guard``;
    without one, the layer switched off with the floor ``threshold``): the
    subset rule, the rare-allele policy, the budget, noise and rounding.
    Datasets whose answer is withheld are named in
    :attr:`Answer.withheld_datasets`.
    """
    if guard is None:
        guard = Guard(
            DisclosureControl.off(threshold),
            identity="local",
            caller=caller,
            question=(request, scope),
        )
    # Dataset and cohort records are catalogue metadata (published in DCAT-AP
    # to anyone): whoever may query a dataset at all gets them. Filters make it
    # a question about people, answered at the dataset's granularity.
    catalogue = scope.entry_type in COLLECTIONS and not request.filters
    visible: list[tuple[PublishedDataset, Granularity]] = []
    for handle in published.datasets():
        allowed = allowed_granularity(caller, dataset_access(handle))
        if allowed is None:
            continue
        if catalogue:
            allowed = "record"
        if _dataset_restricted_away(handle, scope):
            continue
        if _names_one_person(scope) and allowed != "record":
            continue
        visible.append((handle, allowed))
    if catalogue:
        granularity: Granularity = "record"
    elif not visible:
        granularity = "boolean"
    else:
        best = max(GRANULARITY_ORDER.index(allowed) for _, allowed in visible)
        granularity = lower_granularity(request.granularity, GRANULARITY_ORDER[best])
    found = Answer(scope, request, granularity, [])
    for handle, allowed in visible:
        if GRANULARITY_ORDER.index(allowed) < GRANULARITY_ORDER.index(granularity):
            found.lower_datasets.append(handle.id)
            continue
        if (
            granularity != "record"
            and _involves_genotypes(request, scope)
            and _subset_too_small(handle, request, guard)
        ):
            found.suppressed_datasets.append(handle.id)
            continue
        item = _released(handle, request, scope, (granularity, allowed), guard, found)
        if item is not None:
            found.datasets.append(item)
    return found


def _subset_too_small(
    handle: PublishedDataset, request: BeaconRequest, guard: Guard
) -> bool:
    """True when individual filters on a variant query select too few people
    (the disclosure layer's subset rule)."""
    if not request.filters:
        return False
    matched = individuals_matching(handle, request.filters, "g_variants")
    size = None if matched is None else len(matched)
    return guard.control.check_subset(size).withheld is not None


def _released(
    handle: PublishedDataset,
    request: BeaconRequest,
    scope: PathScope,
    granularities: tuple[Granularity, Granularity],
    guard: Guard,
    found: Answer,
) -> DatasetAnswer | None:
    """One dataset's answer as disclosure control releases it; None (and the
    dataset named in ``found.withheld_datasets``) when withheld.
    ``granularities``: the answer's, and the most this caller is allowed."""
    granularity, allowed = granularities
    item, basis, allele_count = _answer_dataset(
        handle, request, scope, granularity, guard, allowed
    )
    release = guard.release(
        handle,
        kind=item.kind,
        granularity=granularity,
        allowed=allowed,
        count=basis,
        filtered=bool(request.filters),
        allele_count=allele_count,
        counted=item.counted,
    )
    if release.withheld in ("budget", "error") or release.value is None:
        found.withheld_datasets[handle.id] = release.withheld or "error"
        if release.retry_after is not None:
            found.retry_after = max(found.retry_after or 0, release.retry_after)
        return None
    if item.kind == "collection":
        item.exists = bool(release.value)
        item.reported = int(item.exists)
    elif isinstance(release.value, bool):
        item.exists = release.value
    else:
        item.reported = int(release.value)
        item.adjusted = release.adjusted
        item.exists = item.reported > 0
    return item


def _dataset_restricted_away(handle: PublishedDataset, scope: PathScope) -> bool:
    """True when the path names another dataset (or cohort) than this one."""
    for kind, identifier in (
        (scope.parent_type, scope.parent_id),
        (scope.entry_type, scope.entry_id),
    ):
        if kind in COLLECTIONS and identifier is not None and identifier != handle.id:
            return True
    return False
