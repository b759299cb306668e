"""``genomenode privacy attack``: the operator runs an attack on its own node.

The node's app answers in-process (FastAPI's TestClient: the same routes, access
decision and disclosure control a real caller meets, no port opened). The
attacker's knowledge is stood in for as follows:

- *targets who are members*: genomes read from the dataset's own store (up to
  ``max_members`` people, drawn at random);
- *non-members and the reference panel*: from ``non_members_vcf`` (people of the
  same population who are not in the dataset; the first half of its samples are
  the controls, the second half the reference panel), or, by default,
  synthesised under Hardy-Weinberg equilibrium from the dataset's own allele
  frequencies, each synthetic person given as many alleles the dataset lacks as
  a member has alleles no other member has
  (:func:`~genomenode.privacy.cohort.synthesise_genotypes`).

The default is weaker, and the result says which was used: synthetic people have
no linkage disequilibrium and their frequencies are the dataset's own, so the
reference panel sits on the mixture's frequencies and Homer's power is
understated; a VCF of real outsiders gives a faithful estimate.

Every run queries as a fresh caller (``privacy-attack-<random>``), so it spends a
budget of its own (and an anonymous pool of its own) and never that of a real
caller; its queries are audited like any other.
"""

from __future__ import annotations

import contextlib
import pathlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, NotFoundError
from .cohort import VariantGenotypes, read_genotypes, synthesise_genotypes
from .homer import homer_attack
from .oracle import BeaconOracle
from .report import AttackResult
from .sb import sb_attack

__all__ = ["ATTACKS", "OperatorAttack", "attack_node", "members_from_store"]

ATTACKS = ("sb", "homer")


@dataclass(frozen=True)
class OperatorAttack:
    """An attack run by the operator, with how its cohort was made."""

    dataset_id: str
    result: AttackResult
    non_members: str  # "vcf:<path>" or "synthetic (HWE)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset_id,
            "non_members": self.non_members,
            **self.result.as_dict(),
        }


def members_from_store(
    store: Any, sample_ids: list[str], *, max_members: int, seed: int = 0
) -> VariantGenotypes:
    """Biallelic ALT dosages of up to ``max_members`` samples of a dataset's store.

    Parameters
    ----------
    store
        The dataset's :class:`~genomenode.store.genotypes.GenotypeStore`.
    sample_ids
        The store's sample ids, in column order.
    """
    rng = np.random.default_rng(seed)
    columns = np.sort(
        rng.choice(
            len(sample_ids), size=min(max_members, len(sample_ids)), replace=False
        )
    )
    contigs, positions, references, alternates, rows = [], [], [], [], []
    for contig, (first, last) in store.contigs.items():
        alleles = store.alleles(first, last)
        for offset, row in enumerate(range(first, last)):
            row_alleles = [str(allele) for allele in alleles[offset] if str(allele)]
            if len(row_alleles) != 2:
                continue
            calls = store.genotypes(row)[columns]
            contigs.append(contig)
            positions.append(int(store.positions(row, row + 1)[0]))
            references.append(row_alleles[0])
            alternates.append(row_alleles[1])
            rows.append((calls == 1).sum(axis=1))
    dosage = (
        np.array(rows, dtype=np.int8)
        if rows
        else np.zeros((0, columns.size), dtype=np.int8)
    )
    return VariantGenotypes(
        contig=np.array(contigs, dtype=object),
        position=np.array(positions, dtype=np.int64),
        reference=np.array(references, dtype=object),
        alternate=np.array(alternates, dtype=object),
        dosage=dosage,
        samples=[sample_ids[column] for column in columns],
    )


def _join(first: VariantGenotypes, second: VariantGenotypes) -> VariantGenotypes:
    """Both groups' dosages on the union of their variants (absent: 0)."""
    keys = sorted(set(first.variant_keys()) | set(second.variant_keys()))
    return VariantGenotypes(
        contig=np.array([key[0] for key in keys], dtype=object),
        position=np.array([key[1] for key in keys], dtype=np.int64),
        reference=np.array([key[2] for key in keys], dtype=object),
        alternate=np.array([key[3] for key in keys], dtype=object),
        dosage=np.concatenate(
            [first.aligned_to(keys), second.aligned_to(keys)], axis=1
        ),
        samples=first.samples + second.samples,
    )


def _columns(genotypes: VariantGenotypes, columns: slice) -> VariantGenotypes:
    return VariantGenotypes(
        contig=genotypes.contig,
        position=genotypes.position,
        reference=genotypes.reference,
        alternate=genotypes.alternate,
        dosage=genotypes.dosage[:, columns],
        samples=genotypes.samples[columns],
    )


@contextlib.contextmanager
def _in_process_client(node: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from ..app import create_app

    config = node.config
    app = create_app(
        node,
        base_url=config.public_url,
        count_threshold=config.beacon_count_threshold,
        environment=config.beacon_environment,
    )
    caller = ("privacy-attack-" + secrets.token_hex(4), 0)
    # A pool of the run's own, of the same size: the attack meets the defaults
    # without spending what the node's real anonymous callers share.
    app.state.beacon.disclosure.anonymous_pool = f"anonymous:{caller[0]}"
    with TestClient(app, client=caller) as client:
        yield client


def attack_node(
    node_dir: str | pathlib.Path,
    dataset_id: str,
    *,
    attack: str = "sb",
    queries: int = 5000,
    non_members_vcf: str | pathlib.Path | None = None,
    num_non_members: int = 100,
    max_members: int = 100,
    fpr: float = 0.05,
    seed: int = 0,
) -> OperatorAttack:
    """Run the SB or Homer attack on a dataset of the node, in-process.

    Parameters
    ----------
    node_dir
        The node directory.
    dataset_id
        A published dataset of the node.
    attack
        ``"sb"`` (yes/no answers, anonymous caller) or ``"homer"`` (counts:
        needs a dataset that gives anonymous callers counts).
    queries
        The attack's queries in all: Homer asks one per SNP; SB shares them
        evenly among its targets (``queries // targets`` each, at least one).
    non_members_vcf
        People of the same population not in the dataset (half controls, half
        reference panel); default: synthesised (see the module's docstring).
    num_non_members
        Synthetic controls (and as many reference people) when no VCF is given.
    max_members
        Members tested as targets.

    Raises
    ------
    NotFoundError
        No such published dataset.
    InputError
        Unknown attack, or too few non-members in the VCF.
    """
    from ..store.node import open_node
    from ..store.published import PublishedDatasets

    if attack not in ATTACKS:
        raise InputError(f"unknown attack {attack!r}: one of {', '.join(ATTACKS)}")
    with open_node(node_dir) as node:
        handle = PublishedDatasets(node).get(dataset_id)
        if handle is None:
            raise NotFoundError(f"no published dataset {dataset_id!r} on this node")
        store = handle.store
        everyone = members_from_store(
            store, store.samples, max_members=len(store.samples), seed=seed
        )
        picked = np.sort(
            np.random.default_rng(seed).permutation(len(everyone.samples))[:max_members]
        )
        members = VariantGenotypes(
            contig=everyone.contig,
            position=everyone.position,
            reference=everyone.reference,
            alternate=everyone.alternate,
            dosage=everyone.dosage[:, picked],
            samples=[everyone.samples[column] for column in picked],
        )
        num_individuals = int(handle.facts.num_individuals)
        if non_members_vcf is not None:
            outsiders = read_genotypes(non_members_vcf)
            half = outsiders.dosage.shape[1] // 2
            if half < 10:
                raise InputError(
                    f"{non_members_vcf}: {outsiders.dosage.shape[1]} samples; "
                    "at least 20 needed (half controls, half reference panel)"
                )
            controls = _columns(outsiders, slice(0, half))
            reference = _columns(outsiders, slice(half, None))
            described = f"vcf:{non_members_vcf}"
        else:
            # Alleles only one member carries: what an outsider has unseen here.
            singletons = (everyone.dosage.sum(axis=1) == 1)[:, None] & (
                everyone.dosage == 1
            )
            synthetic = synthesise_genotypes(
                everyone,
                2 * num_non_members,
                novel_per_person=float(singletons.sum(axis=0).mean()),
                seed=seed,
            )
            controls = _columns(synthetic, slice(0, num_non_members))
            reference = _columns(synthetic, slice(num_non_members, None))
            described = "synthetic (HWE from the dataset's frequencies)"
        targets = _join(members, controls)
        is_member = np.array(
            [True] * members.dosage.shape[1] + [False] * controls.dosage.shape[1]
        )
        with _in_process_client(node) as client:
            oracle = BeaconOracle(client, dataset=dataset_id)
            if attack == "sb":
                result = sb_attack(
                    oracle,
                    targets,
                    is_member,
                    reference,
                    num_individuals=num_individuals,
                    queries=max(1, queries // len(is_member)),
                    fpr=fpr,
                    seed=seed,
                )
            else:
                result = homer_attack(
                    oracle,
                    targets,
                    is_member,
                    reference,
                    queries=queries,
                    fpr=fpr,
                    seed=seed,
                )
    return OperatorAttack(dataset_id, result, described)
