"""Analyses use the dataset's QC flags: once ``qc run`` has failed samples and
variants, a node's sufficient statistics leave the failed samples out of every
variant and the failed variants out of the window — also on a server that
answered the same window before the QC run (its cached window is not reused)."""

from __future__ import annotations

import numpy as np

from genomenode.analysis.codec import decode
from genomenode.qc.flags import load_flags, load_report
from genomenode.qc.run import run_qc
from genomenode.qc.settings import QcSettings
from genomenode.store.node import open_node
from genomenode.store.published import PublishedDatasets

WINDOW = {"contig": "1", "start": 1, "end": 2_000_000}
BODY = {"model": "linear", "outcome": "age", "covariates": ["sex"], "window": WINDOW}


def _keys_in_window(node, dataset_id: str) -> tuple[list[str], range]:
    """``POS:REF:ALT`` of every row of the window, in row order, and the rows."""
    store = PublishedDatasets(node).get(dataset_id).store
    rows = store.rows_at(WINDOW["contig"], WINDOW["start"], WINDOW["end"])
    alleles = store.alleles(rows.start, rows.stop)
    positions = np.asarray(store.positions(rows.start, rows.stop))
    return [
        f"{position}:{row[0]}:{row[1]}"
        for position, row in zip(positions, alleles, strict=True)
    ], rows


def test_a_node_leaves_out_the_samples_and_variants_qc_failed(
    node_client, tmp_path, pooled
):
    client = node_client()
    before = client.post("/analysis/datasets/part-1/glm", json=BODY)
    assert before.status_code == 200, before.text
    before = before.json()

    # Strict thresholds so that this small simulated cohort fails some of each:
    # outliers (heterozygosity, singletons, Ti/Tv) among the samples, HWE among
    # the variants; KING is left out (on a few thousand variants it calls many
    # of 200 simulated people related, which would leave too few to analyse).
    with open_node(tmp_path / "node") as node:
        run_qc(
            node,
            "part-1",
            settings=QcSettings(
                sample_outlier_mads=2.0,
                hwe_min_p=0.2,
                kinship_duplicate=1.0,
                kinship_related=1.0,
            ),
        )
        flags = load_flags(node, "part-1")
        report = load_report(node, "part-1")
        keys, rows = _keys_in_window(node, "part-1")
    assert flags is not None and report is not None
    assert len(flags.sample_pass) / 2 < flags.sample_pass.sum() < len(flags.sample_pass)
    failed_keys = {
        key
        for key, passed in zip(
            keys, flags.variant_pass[rows.start : rows.stop], strict=True
        )
        if not passed
    }
    everything_before = set(before["variants"]) | set(before["withheld"])
    assert failed_keys & everything_before, "some failed variant was analysed before"

    after = client.post("/analysis/datasets/part-1/glm", json=BODY)
    assert after.status_code == 200, after.text
    after = after.json()
    assert set(after["variants"]) | set(after["withheld"]) == (
        everything_before - failed_keys
    )

    # Every released variant counts the passing samples only, and its XᵀX is
    # theirs, computed from the pooled VCF.
    passing = [sample["id"] for sample in report["samples"] if not sample["reasons"]]
    n_before = decode(before["num_observations"], field="n")
    n_after = decode(after["num_observations"], field="n")
    assert set(n_before.tolist()) == {len(report["samples"])}
    assert set(n_after.tolist()) == {len(passing)}
    columns = [pooled.samples.index(sample) for sample in passing]
    index = {key: row for row, key in enumerate(pooled.keys)}
    xtx = decode(after["xtx"], field="xtx")
    for number, key in enumerate(after["variants"][:20]):
        x = np.column_stack(
            [
                np.ones(len(columns)),
                pooled.sex[columns],
                pooled.dosages[index[key], columns],
            ]
        )
        np.testing.assert_allclose(xtx[number], x.T @ x, rtol=1e-12)
