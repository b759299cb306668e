"""What of a reference is published: the disclosure layer's small-count rule and
the release rule of CONTROLLED datasets."""

from __future__ import annotations

import pathlib

import numpy as np
import pysam
import pytest
import yaml
from fastapi.testclient import TestClient

from genomenode.app import create_app
from genomenode.disclosure.control import DisclosureControl
from genomenode.disclosure.settings import DisclosureSettings
from genomenode.ingest.pipeline import ingest
from genomenode.reference.release import release_allowed, released_frequencies
from genomenode.reference.store import ReferenceCounts
from genomenode.simulate import simulate_cohort
from genomenode.store.node import init_node, open_node

from ..conftest import in_process_workers

NAMES = ["FI", "FI_M", "FI_F", "M", "F"]


def _counts(cells: dict[str, int]) -> ReferenceCounts:
    males, females = cells.get("FI_M", 0), cells.get("FI_F", 0)
    unknown = cells.get("FI_U", 0)
    samples = [males + females + unknown, males, females, males, females]
    return ReferenceCounts(
        populations=NAMES,
        population_samples=samples,
        cell_samples=cells,
        # AC 2 (one het man, one het woman) ... per population
        allele_count=np.array([2, 1, 1, 1, 1]),
        allele_count_hom=np.array([0, 0, 0, 0, 0]),
        allele_count_het=np.array([2, 1, 1, 1, 1]),
        allele_count_hemi=np.array([0, 0, 0, 0, 0]),
        allele_number=np.array([2 * s for s in samples]),
    )


def _control(enabled: bool = True, threshold: int = 5) -> DisclosureControl:
    settings = DisclosureSettings(enabled=enabled, count_threshold=threshold)
    return DisclosureControl(settings, None, pathlib.Path("/nonexistent"))


def test_counts_below_the_floor_are_published_as_the_floor():
    released = released_frequencies(_counts({"FI_M": 40, "FI_F": 60}), _control())
    assert [item.population for item in released] == NAMES
    fi = released[0]
    # AC 2 is published as 5 ("at most"), AN 200 as it is; AF from what is published.
    assert (fi.allele_count, fi.allele_number, fi.allele_count_het) == (5, 200, 5)
    assert fi.allele_frequency == 5 / 200 and fi.adjusted
    assert fi.allele_count_hom == 0  # a zero stays a zero


def test_a_small_sex_group_withholds_every_sex_row():
    # 3 women: FI_F would name them; FI_M and M would give them away as FI - FI_M.
    released = released_frequencies(_counts({"FI_M": 40, "FI_F": 3}), _control())
    assert [item.population for item in released] == ["FI"]
    released = released_frequencies(
        _counts({"FI_M": 40, "FI_F": 40, "FI_U": 2}), _control()
    )
    assert [item.population for item in released] == ["FI"]


def test_a_small_dataset_publishes_nothing():
    assert released_frequencies(_counts({"FI_M": 2, "FI_F": 2}), _control()) == []


def test_granted_callers_and_the_layer_off_get_the_truth():
    counts = _counts({"FI_M": 40, "FI_F": 3})
    for released in (
        released_frequencies(counts, _control(), exact=True),
        released_frequencies(counts, _control(enabled=False)),
    ):
        assert [item.population for item in released] == NAMES
        assert released[0].allele_count == 2 and not released[0].adjusted


def test_the_floor_is_the_nodes_threshold():
    released = released_frequencies(
        _counts({"FI_M": 40, "FI_F": 60}), _control(threshold=10)
    )
    assert released[0].allele_count == 10


@pytest.mark.parametrize(
    ("level", "terms", "setting", "allowed"),
    [
        ("PUBLIC", ["DUO:0000007"], False, True),
        ("REGISTERED", ["DUO:0000042"], False, True),
        ("CONTROLLED", ["DUO:0000042"], False, False),
        ("CONTROLLED", ["DUO:0000042"], True, True),
        ("CONTROLLED", ["DUO:0000006", "DUO:0000019"], True, True),
        ("CONTROLLED", ["DUO:0000007"], True, False),  # disease-specific only
        ("CONTROLLED", ["DUO:0000042", "DUO:0000026"], True, False),  # one user
        ("CONTROLLED", ["DUO:0000042", "DUO:0000044"], True, False),  # no ancestry
    ],
)
def test_release_of_controlled_datasets(level, terms, setting, allowed):
    assert release_allowed(level, terms, setting)[0] is allowed


def test_a_controlled_reference_needs_the_setting_and_its_duo_terms(
    tmp_path, monkeypatch
):
    with in_process_workers():
        cohort = simulate_cohort(
            tmp_path / "cohort", samples=60, length=100_000, seed=5, dataset_id="c"
        )
        document = yaml.safe_load(cohort.dataset_yaml.read_text())
        document["data_use"] = [{"id": "DUO:0000042"}]
        cohort.dataset_yaml.write_text(yaml.safe_dump(document))
        with init_node(tmp_path / "node", node_id="n", country="FI") as node:
            ingest(node, cohort.dataset_yaml)
    with pysam.VariantFile(str(cohort.vcf_path)) as vcf:
        record = max(vcf, key=lambda item: item.info["AC"][0])
    variant = f"1-{record.pos}-{record.ref}-{record.alts[0]}"
    with open_node(tmp_path / "node") as node, TestClient(create_app(node)) as client:
        answer = client.get(f"/reference/variants/{variant}").json()
        assert not answer["exists"] and "c" in answer["datasetsWithheld"]
        assert client.get("/reference").json()["datasets"][0]["withheld"]
    monkeypatch.setenv("GENOMENODE_REFERENCE_RELEASE_CONTROLLED", "true")
    with open_node(tmp_path / "node") as node, TestClient(create_app(node)) as client:
        answer = client.get(f"/reference/variants/{variant}").json()
        assert answer["exists"]
        assert answer["datasets"][0]["populations"][0]["alleleCount"] == max(
            5, record.info["AC"][0]
        )
        # Bad ids are a 400 naming the field, never a 500.
        for bad in ("1-x-A-G", "1-100-A-", "nonsense", "1-100-A-G" + "A" * 2000):
            response = client.get(f"/reference/variants/{bad}")
            assert response.status_code in (400, 404), bad
