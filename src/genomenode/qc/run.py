"""``genomenode qc run``: sample QC, then variant QC on the passing samples.

Runs on a published dataset under its lock (no removal or access change
meanwhile) and stores the results beside its store (:mod:`.flags`). The dataset
itself is not touched: failing samples and variants are flagged, never deleted.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr
from sqlalchemy import select

from ..errors import InputError
from ..store.compute import dask_client
from ..store.genotype_rows import GenotypeSource
from ..store.locks import dataset_lock
from ..store.models import Dataset, Individual
from ..store.node import Node
from ..version import __version__
from .flags import QC_FORMAT_VERSION, store_results
from .samples import SampleQc, flag_samples, measure_samples, row_kinds
from .settings import QcSettings
from .variants import VARIANT_REASONS, VariantQc, measure_variants

__all__ = ["SAMPLE_CHECKS", "run_qc"]

_SEX_LETTER = {"NCIT:C20197": "M", "NCIT:C16576": "F"}

#: The sample checks and what each needs of the data to be measured.
SAMPLE_CHECKS = (
    "call_rate",
    "depth",
    "genotype_quality",
    "heterozygosity",
    "ti_tv",
    "singletons",
    "sex",
    "relatedness",
    "ancestry",
)


def _clinical(node: Node, dataset_id: str, num_samples: int) -> tuple[Any, Any]:
    """Population (country of birth, else the dataset's) and declared sex
    (``M``, ``F``, ``U``) of each genotype column."""
    with node.session() as session:
        country = session.get(Dataset, dataset_id).country  # type: ignore[union-attr]
        rows = session.execute(
            select(
                Individual.sample_index,
                Individual.country_of_birth,
                Individual.sex_id,
            ).where(
                Individual.dataset_id == dataset_id,
                Individual.sample_index.is_not(None),
            )
        ).all()
    population = np.full(num_samples, country.upper(), dtype=object)
    sex = np.full(num_samples, "U", dtype=object)
    for index, born, sex_id in rows:
        population[index] = (born or country).upper()
        sex[index] = _SEX_LETTER.get(sex_id, "U")
    return population, sex


def _numbers(values: np.ndarray) -> list[Any]:
    """An array as JSON-safe nested lists (NaN and infinities become None), at
    C speed but for the few NaN and infinite values."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.integer):
        return values.tolist()
    floats = values.astype(np.float64)
    listed = floats.tolist()
    for index in zip(*np.nonzero(~np.isfinite(floats)), strict=True):
        target = listed
        for position in index[:-1]:
            target = target[position]
        target[index[-1]] = None
    return listed


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else None


def build_report(
    *,
    dataset_id: str,
    fingerprint: str,
    settings: QcSettings,
    samples: SampleQc,
    variants: VariantQc,
    seconds: float,
) -> dict[str, Any]:
    """The ``qc.json`` document: summary, declaration, per-sample results."""
    passed = samples.passed
    num_samples = len(passed)
    reasons: dict[str, int] = {}
    for sample_reasons in samples.reasons:
        for reason in sample_reasons:
            reasons[reason] = reasons.get(reason, 0) + 1
    has_x = bool((samples.metrics["x_num_called"] > 0).any())
    not_measured = [
        check
        for check, measured in (
            ("depth", samples.has_depth),
            ("genotype_quality", samples.has_quality),
            ("sex", has_x),
            ("relatedness", samples.num_common_variants > 0),
            ("ancestry", samples.principal_components.size > 0),
        )
        if not measured
    ]
    variant_pass = variants.passed
    summary = {
        "num_samples": num_samples,
        "num_samples_passed": int(passed.sum()),
        "sample_reasons": dict(sorted(reasons.items())),
        "num_variants": len(variant_pass),
        "num_variants_passed": int(variant_pass.sum()),
        "variant_reasons": variants.reason_counts(),
        "median_call_rate": _median(samples.metrics["call_rate"]),
        "median_mean_depth": _median(samples.metrics["mean_depth"]),
        "median_ti_tv": _median(samples.metrics["ti_tv"]),
        "median_heterozygosity": _median(samples.metrics["heterozygosity"]),
        **samples.site_counts,
        "ti_tv": (
            samples.site_counts["num_transitions"]
            / samples.site_counts["num_transversions"]
            if samples.site_counts.get("num_transversions")
            else None
        ),
        "num_common_variants": samples.num_common_variants,
        "num_related_pairs": len(samples.kinship),
        "populations": variants.populations,
    }
    ready = bool(passed.any() and variant_pass.any())
    declaration = {
        "one_plus_mg_ready": ready,
        "statement": (
            "Sample and variant quality measured by genomenode QC with the "
            "thresholds below; failing samples and variants are flagged (not "
            "deleted) for the reference and analyses to leave out."
            if ready
            else "QC ran, but no sample or no variant passed it."
        ),
        "checks_measured": [c for c in SAMPLE_CHECKS if c not in not_measured],
        "checks_not_measured": not_measured,
    }
    metric_names = [
        name for name in samples.metrics if name not in ("het_expected_hom",)
    ]
    columns = {name: _numbers(samples.metrics[name]) for name in metric_names}
    components = samples.principal_components
    component_rows = _numbers(components) if components.size else None
    sample_rows = []
    for index, sample_id in enumerate(samples.sample_ids):
        sample_rows.append(
            {
                "id": sample_id,
                "population": str(samples.population[index]),
                "declared_sex": str(samples.declared_sex[index]),
                "inferred_sex": str(samples.inferred_sex[index]),
                "reasons": samples.reasons[index],
                "metrics": {name: columns[name][index] for name in metric_names},
                "principal_components": (
                    component_rows[index] if component_rows is not None else []
                ),
            }
        )
    return {
        "format_version": QC_FORMAT_VERSION,
        "dataset": dataset_id,
        "fingerprint": fingerprint,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "genomenode_version": __version__,
        "seconds": round(seconds, 3),
        "thresholds": settings.as_dict(),
        "summary": summary,
        "declaration": declaration,
        "samples": sample_rows,
        "related_pairs": [
            [int(first), int(second), float(kinship)]
            for first, second, kinship in zip(
                samples.kinship_first,
                samples.kinship_second,
                samples.kinship,
                strict=True,
            )
        ],
        "kinship_histogram": {
            "counts": samples.kinship_histogram.tolist(),
            "low": -0.5,
            "high": 0.5,
        },
        "eigenvalues": [float(value) for value in samples.eigenvalues],
        "variant_reasons": list(VARIANT_REASONS),
    }


def run_qc(
    node: Node,
    dataset_id: str,
    *,
    settings: QcSettings | None = None,
    check_cancelled: Callable[[], None] = lambda: None,
    dask_scheduler: str | None = None,
) -> dict[str, Any]:
    """Run sample and variant QC on a published dataset and store the results.

    The passes over the calls (blocks of variants) and the kinship (blocks of
    sample pairs) run as tasks on the node's Dask cluster when
    ``dask_scheduler`` or the ``dask_scheduler`` setting names one, else in
    this process; the results are the same.

    Parameters
    ----------
    node
        The node.
    dataset_id
        A published dataset with genotypes.
    settings
        The thresholds; default the node's ``qc_*`` settings.
    dask_scheduler
        A Dask scheduler's address (``qc run --dask-scheduler``), overriding
        the setting.

    Returns
    -------
    dict
        The summary and declaration (``qc.json`` without the per-sample rows).

    Raises
    ------
    NotFoundError
        The dataset is not published on the node.
    InputError
        The dataset has no genotypes (a sites-only dataset).
    """
    settings = settings or QcSettings.from_values(node.config.values)
    manifest = node.dataset_manifest(dataset_id)
    if manifest.get("site_counts"):
        raise InputError(
            f"dataset {dataset_id!r} holds allele counts only (sites-only): "
            "there are no genotypes to quality-control"
        )
    started = time.perf_counter()
    with (
        dataset_lock(node.staging_dir, dataset_id),
        dask_client(node.config, dask_scheduler) as client,
    ):
        # Through the node: a local directory, an object store or a sealed store.
        vcz = manifest["genotypes"]["path"]
        location, _ = node.dataset_zarr(dataset_id, manifest["fingerprint"], vcz)
        root: Any = zarr.open_group(location, mode="r")
        # What a worker opens (a task does not take the opened group along).
        source = (
            GenotypeSource.of(node, dataset_id, manifest["fingerprint"], vcz)
            if client is not None
            else None
        )
        num_samples = root["call_genotype"].shape[1]
        population, declared_sex = _clinical(node, dataset_id, num_samples)
        assembly = str(manifest["genotypes"].get("assembly", ""))
        samples = measure_samples(
            root,
            assembly=assembly,
            settings=settings,
            population=population,
            declared_sex=declared_sex,
            check_cancelled=check_cancelled,
            source=source,
            client=client,
        )
        flag_samples(samples, settings)
        kinds = row_kinds(
            [str(name) for name in root["contig_id"][:]],
            root["variant_contig"][:],
            root["variant_position"][:],
            assembly,
        )
        variants = measure_variants(
            root,
            kinds=kinds,
            sample_pass=samples.passed,
            population=population,
            settings=settings,
            check_cancelled=check_cancelled,
            source=source,
            client=client,
        )
        report = build_report(
            dataset_id=dataset_id,
            fingerprint=manifest.get("fingerprint", ""),
            settings=settings,
            samples=samples,
            variants=variants,
            seconds=time.perf_counter() - started,
        )
        store_results(
            node,
            dataset_id,
            manifest["fingerprint"],
            report,
            {
                "reasons": variants.reasons,
                "call_rate": variants.call_rate,
                "hwe_p": variants.hwe_p,
                "populations": np.array(variants.populations, dtype=str),
                "inbreeding_coeff": variants.inbreeding_coeff,
                "allele_count": variants.allele_count,
                "allele_count_high_quality": variants.allele_count_high_quality,
            },
        )
    return {
        key: report[key]
        for key in ("dataset", "created", "seconds", "thresholds", "summary")
    } | {"declaration": report["declaration"]}
