"""privacy/cohort.py: one population dealt into members, non-members, reference."""

from __future__ import annotations

import numpy as np
import yaml

from genomenode.privacy.cohort import read_genotypes, simulate_split_cohort


def test_split_cohort_deals_one_population_into_disjoint_groups(tmp_path):
    split = simulate_split_cohort(
        tmp_path,
        members=9,
        non_members=5,
        reference=6,
        parts=3,
        length=60_000,
        seed=4,
        beacon={"anonymous": "count"},
    )
    groups = [*split.members, split.non_members, split.reference]
    everyone = [sample for group in groups for sample in group]
    assert len(everyone) == len(set(everyone)) == 20
    assert [len(part) for part in split.members] == [3, 3, 3]
    assert split.dataset_ids == ["attack-1", "attack-2", "attack-3"]
    pool = read_genotypes(split.pool_vcf)
    keys = pool.variant_keys()
    for part, description in zip(split.members, split.dataset_yamls, strict=True):
        document = yaml.safe_load(description.read_text())
        assert document["beacon"] == {"anonymous": "count"}
        assert "simulation" not in document
        assert (
            sorted(p.stem for p in (description.parent / "phenopackets").iterdir())
            == part
        )
        written = read_genotypes(description.parent / f"{document['id']}.vcf.gz")
        assert written.samples == part
        # Every site written is carried by one of its members, with the pool's calls.
        assert (written.dosage.sum(axis=1) > 0).all()
        columns = [pool.samples.index(sample) for sample in part]
        expected = pool.aligned_to(written.variant_keys())[:, columns]
        assert np.array_equal(written.dosage, expected)
        carried = pool.dosage[:, columns].sum(axis=1) > 0
        assert len(written.variant_keys()) == int(carried.sum())
        assert set(written.variant_keys()) <= set(keys)
