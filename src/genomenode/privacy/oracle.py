"""The attacker's view of a beacon: Beacon v2 requests over HTTP, one per variant.

Two questions, as any caller can ask them:

- *does anyone here carry this allele?* ``GET /api/g_variants`` with the variant,
  read from ``responseSummary.exists`` (boolean access; the SB attack);
- *how many people here carry it?* ``GET /api/individuals`` with the variant at
  count granularity, ``responseSummary.numTotalResults`` (count access; Homer).

A 429 (a spent query budget) is a refusal: the answer is ``None`` and counted in
:attr:`BeaconOracle.num_refused`; so is an answer that names datasets withheld
for the budget (``info.datasetsWithheld``: the others answered, so it is
partial). After the first one the oracle stops asking, as
an attacker told to come back tomorrow would (``Retry-After``): later questions
are answered ``None`` without a request and counted in
:attr:`BeaconOracle.num_unsent`. The client is anything with ``get(url, params=,
headers=)`` answering like httpx: an ``httpx2.Client`` on a real server or the
network, or a FastAPI ``TestClient`` in-process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from ..errors import GenomenodeError, InputError

__all__ = ["BeaconOracle", "HttpClient", "Variant"]

#: ``(contig, position, ref, alt)``, the position 1-based as in VCF.
Variant = tuple[str, int, str, str]
_Answer = TypeVar("_Answer")


class HttpClient(Protocol):
    def get(self, url: str, **kwargs: Any) -> Any: ...


class BeaconOracle:
    """Variant questions to one beacon (a node, one of its datasets, or a network).

    Parameters
    ----------
    client
        Sends the requests (``httpx2.Client``, ``TestClient``).
    base_url
        The node's or network's URL without ``/api`` (``""`` for a TestClient).
    dataset
        Ask only this dataset (``/api/datasets/{id}/...``); None: every dataset
        the beacon answers for.
    headers
        Sent with every request (e.g. a passport).
    workers
        Requests in flight at once for :meth:`exists_many` / :meth:`carriers_many`.
    """

    def __init__(
        self,
        client: HttpClient,
        base_url: str = "",
        *,
        dataset: str | None = None,
        headers: dict[str, str] | None = None,
        workers: int = 1,
    ) -> None:
        self.client = client
        self.prefix = f"{base_url}/api" + (f"/datasets/{dataset}" if dataset else "")
        self.headers = dict(headers or {})
        self.workers = max(1, workers)
        self.num_queries = 0
        self.num_refused = 0
        self.num_unsent = 0
        self._lock = threading.Lock()

    def _get(self, endpoint: str, params: dict[str, str]) -> dict[str, Any] | None:
        with self._lock:
            if self.num_refused:
                self.num_unsent += 1
                return None
        response = self.client.get(
            f"{self.prefix}/{endpoint}", params=params, headers=self.headers
        )
        with self._lock:
            self.num_queries += 1
            if response.status_code == 429:
                self.num_refused += 1
                return None
        if response.status_code != 200:
            raise GenomenodeError(
                f"{self.prefix}/{endpoint}: HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
        document: dict[str, Any] = response.json()
        withheld = (document.get("info") or {}).get("datasetsWithheld") or {}
        if "budget" in withheld.values():
            # Some datasets answered, others had spent this caller's budget: the
            # answer is partial, and the rest of the run would be too.
            with self._lock:
                self.num_refused += 1
            return None
        return document

    @staticmethod
    def _params(variant: Variant, granularity: str) -> dict[str, str]:
        contig, position, ref, alt = variant
        return {
            "referenceName": contig,
            "start": str(position - 1),
            "referenceBases": ref,
            "alternateBases": alt,
            "requestedGranularity": granularity,
        }

    def exists(self, variant: Variant) -> bool | None:
        """Whether the beacon says someone carries ``variant`` (None: refused)."""
        document = self._get("g_variants", self._params(variant, "boolean"))
        if document is None:
            return None
        return bool(document["responseSummary"]["exists"])

    def carriers(self, variant: Variant) -> float | None:
        """How many individuals the beacon says carry ``variant`` (None: refused).

        A count reported as "at most k" (``countPrecision: fewer-or-equal``, the
        small-count floor) is read as the middle of 1..k, the attacker's best
        guess.

        Raises
        ------
        InputError
            The beacon answers this caller below count granularity.
        """
        document = self._get("individuals", self._params(variant, "count"))
        if document is None:
            return None
        total = self._count(document)
        result_sets = document.get("response", {}).get("resultSets")
        if not result_sets:
            return float(total)
        estimate = 0.0
        for result_set in result_sets:
            count = float(result_set.get("resultsCount", 0))
            info = result_set.get("info") or {}
            if info.get("countPrecision") == "fewer-or-equal" and count > 0:
                count = (1 + count) / 2
            estimate += count
        return estimate

    def num_individuals(self) -> int | None:
        """How many individuals the beacon says it holds (None: refused)."""
        document = self._get("individuals", {"requestedGranularity": "count"})
        return None if document is None else int(self._count(document))

    @staticmethod
    def _count(document: dict[str, Any]) -> float:
        summary = document["responseSummary"]
        if "numTotalResults" not in summary:
            granularity = document.get("meta", {}).get("returnedGranularity")
            raise InputError(
                f"the beacon answers this caller at {granularity} granularity; "
                "an allele-frequency attack needs counts"
            )
        return float(summary["numTotalResults"])

    def _many(
        self, ask: Callable[[Variant], _Answer], variants: Sequence[Variant]
    ) -> list[_Answer]:
        if self.workers == 1 or len(variants) < 2:
            return [ask(variant) for variant in variants]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(ask, variants))

    def exists_many(self, variants: Sequence[Variant]) -> list[bool | None]:
        """:meth:`exists` for each variant, in order."""
        return self._many(self.exists, variants)

    def carriers_many(self, variants: Sequence[Variant]) -> list[float | None]:
        """:meth:`carriers` for each variant, in order."""
        return self._many(self.carriers, variants)
