"""A node with the real 1000 Genomes files the reference is checked on.

- ``kg``: the 1000 Genomes slice of chromosome 1 (2,504 samples, multi-allelic
  sites) with one call in 23 set missing (``./.``), so that AN varies;
- ``kgx``: the 1000 Genomes chrX subset (1,126 samples), whose males are written
  ``0/.`` / ``1/.``; in its first half those calls are rewritten as true haploid
  calls (``0`` / ``1``), so both spellings of a hemizygous call are counted.

Both carry the CINECA individuals (sex of each 1000 Genomes sample). The exact
VCFs ingested are kept beside the node for the peer tools.
"""

from __future__ import annotations

import gzip
import pathlib
import shutil
from dataclasses import dataclass

import pysam
import pytest

from genomenode.ingest.pipeline import ingest
from genomenode.reference.build import build_reference
from genomenode.store.node import Node, init_node

from ..conftest import (
    CINECA_INDIVIDUALS,
    CINECA_VCF,
    DATA,
    in_process_workers,
    write_dataset_yaml,
)

CHRX_VCF = DATA / "realvcf" / "1KG_phase3_subset_chrX.vcf.gz"


@dataclass
class ReferenceNode:
    node: Node
    vcfs: dict[str, pathlib.Path]
    directory: pathlib.Path


def _rewrite(source: pathlib.Path, target: pathlib.Path, edit) -> None:
    """Copy a VCF, each data line's sample fields passed through ``edit``."""
    text = target.with_suffix("")
    with gzip.open(source, "rt") as reading, open(text, "w") as writing:
        number = 0
        for line in reading:
            if line.startswith("#"):
                writing.write(line)
                continue
            fields = line.rstrip("\n").split("\t")
            fields[9:] = edit(number, fields[9:])
            writing.write("\t".join(fields) + "\n")
            number += 1
    pysam.tabix_compress(str(text), str(target), force=True)
    text.unlink()
    pysam.tabix_index(str(target), preset="vcf", force=True)


def _missing(number: int, calls: list[str]) -> list[str]:
    return [
        "./." if (number * 7 + index) % 23 == 0 else call
        for index, call in enumerate(calls)
    ]


def _haploid(count: int):
    def edit(number: int, calls: list[str]) -> list[str]:
        if number >= count // 2:
            return calls
        return [call[0] if call.endswith("/.") else call for call in calls]

    return edit


def _records(path: pathlib.Path) -> int:
    # Plain gzip, not BGZF: read as text.
    with gzip.open(path, "rt") as reading:
        return sum(1 for line in reading if not line.startswith("#"))


@pytest.fixture(scope="session")
def reference_node(tmp_path_factory) -> ReferenceNode:
    root = tmp_path_factory.mktemp("reference")
    vcfs = {}
    with in_process_workers():
        node = init_node(root / "node", node_id="fi-node", country="FI")
        for dataset_id, source, edit in (
            ("kg", CINECA_VCF, _missing),
            ("kgx", CHRX_VCF, _haploid(_records(CHRX_VCF))),
        ):
            directory = root / dataset_id
            directory.mkdir()
            _rewrite(source, directory / "cohort.vcf.gz", edit)
            shutil.copy(CINECA_INDIVIDUALS, directory / "individuals.json")
            # Records for anyone: the Beacon's frequencies can be compared.
            description = write_dataset_yaml(
                directory,
                id=dataset_id,
                security_level="PUBLIC",
                beacon={"anonymous": "record"},
            )
            ingest(node, description)
            vcfs[dataset_id] = directory / "cohort.vcf.gz"
        build_reference(node)
    yield ReferenceNode(node, vcfs, root)
    node.close()
