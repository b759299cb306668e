"""QC of the simulated cohort: the planted problems are flagged, nothing is deleted."""

from __future__ import annotations

import numpy as np
import pytest

from genomenode.errors import NotFoundError
from genomenode.qc.flags import load_flags, load_report, load_variant_arrays
from genomenode.qc.report import render_html
from genomenode.qc.run import run_qc
from genomenode.qc.variants import VARIANT_REASONS


@pytest.fixture(scope="module")
def ran(planted):
    dataset, cohort = planted
    node = dataset.node
    summary = run_qc(node, dataset.dataset_id)
    return dataset, cohort, None, summary, load_report(node, dataset.dataset_id)


def _sample(report, sample_id):
    return next(sample for sample in report["samples"] if sample["id"] == sample_id)


def test_no_flags_where_qc_never_ran(chr22):
    assert load_flags(chr22.node, chr22.dataset_id) is None


def test_planted_duplicate_is_flagged_once(ran):
    _dataset, cohort, _before, _summary, report = ran
    original, copy = cohort.duplicate
    flagged = [
        sample
        for sample in (original, copy)
        if "duplicate" in _sample(report, sample)["reasons"]
    ]
    assert len(flagged) == 1  # one of the pair is kept
    ids = [sample["id"] for sample in report["samples"]]
    pair = [ids.index(original), ids.index(copy)]
    kinships = [k for i, j, k in report["related_pairs"] if sorted([i, j]) == pair]
    assert kinships and kinships[0] > 0.45


def test_planted_sex_swap_is_flagged(ran):
    _dataset, cohort, _before, _summary, report = ran
    swapped = _sample(report, cohort.sex_swapped)
    assert swapped["declared_sex"] == "F"
    assert swapped["inferred_sex"] == "M"
    assert "sex_mismatch" in swapped["reasons"]


def test_planted_low_quality_sample_is_flagged(ran):
    _dataset, cohort, _before, _summary, report = ran
    reasons = _sample(report, cohort.low_quality)["reasons"]
    assert {"low_call_rate", "low_depth", "low_gq"} <= set(reasons)


def test_planted_hwe_violations_are_filtered(ran):
    dataset, cohort, _before, _summary, _report = ran
    flags = load_flags(dataset.node, dataset.dataset_id)
    root = dataset.root
    contigs = [str(c) for c in root["contig_id"][:]]
    positions = root["variant_position"][:]
    variant_contig = root["variant_contig"][:]
    hwe_bit = 1 << VARIANT_REASONS.index("hwe")
    for contig, position in (cohort.hwe_excess, cohort.hwe_deficit):
        (row,) = np.flatnonzero(
            (positions == position) & (variant_contig == contigs.index(contig))
        )
        assert not flags.variant_pass[row]
        assert flags.variant_reasons[row] & hwe_bit
    (excess,) = np.flatnonzero(
        (positions == cohort.hwe_excess[1])
        & (variant_contig == contigs.index(cohort.hwe_excess[0]))
    )
    inbreeding = load_variant_arrays(dataset.node, dataset.dataset_id)[
        "inbreeding_coeff"
    ]
    assert inbreeding[excess] < -0.9


def test_the_rest_passes(ran):
    _dataset, cohort, _before, summary, report = ran
    planted = {cohort.duplicate[1], cohort.sex_swapped, cohort.low_quality}
    others = [s for s in report["samples"] if s["id"] not in planted]
    failing = [s["id"] for s in others if s["reasons"]]
    assert len(failing) <= 0.03 * len(others), failing
    # HWE flags only what was planted (p < 1e-6 by chance is rare)
    assert summary["summary"]["variant_reasons"]["hwe"] == 2
    assert summary["declaration"]["one_plus_mg_ready"] is True
    assert summary["declaration"]["checks_not_measured"] == []


def test_flags_are_aligned_with_the_store_and_nothing_is_deleted(ran):
    dataset, cohort, _before, _summary, _report = ran
    flags = load_flags(dataset.node, dataset.dataset_id)
    num_variants, num_samples, _ = dataset.root["call_genotype"].shape
    assert flags.sample_pass.shape == (num_samples,) == (len(cohort.sample_ids),)
    assert flags.variant_pass.shape == (num_variants,)
    ids = [str(s) for s in dataset.root["sample_id"][:]]
    assert ids == cohort.sample_ids  # the store still has every sample
    assert not flags.sample_pass[ids.index(cohort.low_quality)]
    assert flags.thresholds["hwe_min_p"] == 1e-6


def test_variant_qc_uses_only_passing_samples(ran):
    dataset, _cohort, _before, _summary, _report = ran
    arrays = load_variant_arrays(dataset.node, dataset.dataset_id)
    flags = load_flags(dataset.node, dataset.dataset_id)
    genotypes = dataset.root["call_genotype"][:]
    kept = genotypes[:, flags.sample_pass]
    alternate = (kept > 0).sum(axis=(1, 2))
    assert (arrays["allele_count"] == alternate).all()


def test_unknown_dataset_is_a_clear_error(qc_node):
    with pytest.raises(NotFoundError, match="not published"):
        run_qc(qc_node["node"], "no-such-dataset")


def test_the_reference_counts_only_what_qc_passed(ran):
    """QC flags flow into the Genome of Europe reference (reference/build.py reads
    them through qc.flags.load_flags): the planted low-quality sample is not
    counted and an HWE-failing variant is not in the reference."""
    from genomenode.reference.build import build_reference
    from genomenode.reference.service import reference_store
    from genomenode.store.published import PublishedDatasets

    dataset, _cohort, _before, _summary, _report = ran
    flags = load_flags(dataset.node, dataset.dataset_id)
    (result,) = build_reference(dataset.node, dataset_ids=[dataset.dataset_id])
    assert result.qc
    assert result.num_variants_pass == int(flags.variant_pass.sum())
    handle = PublishedDatasets(dataset.node).get(dataset.dataset_id)
    store = reference_store(handle)
    # The country's population: every sample QC passed, and only those.
    assert not flags.sample_pass.all()
    assert max(store.population_samples) == int(flags.sample_pass.sum())
    failing = int(np.flatnonzero(~flags.variant_pass)[0])
    assert store.counts(failing, 1) is None
    passing = int(np.flatnonzero(flags.variant_pass)[0])
    assert store.counts(passing, 1) is not None


def test_every_legend_sits_beside_its_plot(ran, monkeypatch):
    """matplotlib's default legend place ("best") is a search over the plotted data
    that warns when it takes a second — an error under pytest, so a loaded machine
    turned the report into a 500 — and it can still cover points."""
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

    def searched(*args, **kwargs):
        raise AssertionError("a legend searched the plot for its place")

    monkeypatch.setattr(Legend, "_find_best_position", searched)
    drawn = []
    save = Figure.savefig

    def keep(figure, *args, **kwargs):
        save(figure, *args, **kwargs)
        drawn.append(figure)

    monkeypatch.setattr(Figure, "savefig", keep)
    dataset, _, _, _, report = ran
    render_html(report, load_variant_arrays(dataset.node, dataset.dataset_id))
    legends = [(axes, axes.get_legend()) for figure in drawn for axes in figure.axes]
    legends = [(axes, legend) for axes, legend in legends if legend is not None]
    assert len(legends) >= 4  # the distributions, sex check, PCA, kinship
    for axes, legend in legends:
        assert legend.get_window_extent().x0 >= axes.get_window_extent().x1 - 1
