"""A federated analysis job's request, checked before the network accepts it
(:func:`validate_request`: an :class:`~genomenode.errors.InputError` naming the
field), and the defaults it fills in. The coordinator
(:mod:`genomenode.network.coordinator`) runs what passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..access.duo import purpose_from_json, purpose_to_json
from ..errors import InputError

__all__ = [
    "ANALYSES",
    "DEFAULT_CHUNK_VARIANTS",
    "DEFAULT_LD_R2",
    "DEFAULT_LD_WINDOW",
    "FIRTH_MODES",
    "MAX_DATASETS",
    "validate_request",
]

ANALYSES = ("gwas", "table", "frequencies", "summary", "pca")
_MODELS = ("logistic", "linear")
#: Variants per window (one round trip per window, per IRLS iteration).
DEFAULT_CHUNK_VARIANTS = 3000
MAX_DATASETS = 64
#: LD pruning of the PCA's variants: pooled r² at which the later of two
#: variants at most DEFAULT_LD_WINDOW apart is dropped (plink's common
#: ``--indep-pairwise 50 5 0.2``, one pass).
DEFAULT_LD_R2 = 0.2
#: Firth's penalised logistic regression: never (separated variants get no
#: numbers), for the variants the plain fit finds separated, or for all.
FIRTH_MODES = ("no", "fallback", "all")
DEFAULT_LD_WINDOW = 50


def _strings(value: Any, field: str, *, most: int = 64) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(item, str) and 0 < len(item) <= 128 for item in value
    ):
        raise InputError("a list of names", field=field)
    if len(value) > most:
        raise InputError(f"at most {most}", field=field)
    return value


def validate_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The job request, checked (InputError naming the field)."""
    analysis = body.get("analysis")
    if analysis not in ANALYSES:
        raise InputError(f"one of {', '.join(ANALYSES)}", field="analysis")
    request: dict[str, Any] = {
        "analysis": analysis,
        "datasets": _strings(body.get("datasets"), "datasets", most=MAX_DATASETS),
    }
    if not request["datasets"]:
        raise InputError("at least one dataset", field="datasets")
    failure = body.get("on_node_failure", "fail")
    if failure not in ("fail", "continue"):
        raise InputError("fail or continue", field="on_node_failure")
    request["on_node_failure"] = failure
    purpose = body.get("purpose")
    if purpose is not None:
        # The caller's declared research purpose, sent to every node: a node
        # whose dataset permits analyses without a grant weighs it against the
        # dataset's DUO terms (access.decision.authorize).
        request["purpose"] = purpose_to_json(purpose_from_json(purpose))
    chunk = body.get("chunk_variants", DEFAULT_CHUNK_VARIANTS)
    if not isinstance(chunk, int) or not 100 <= chunk <= 20_000:
        raise InputError("an integer from 100 to 20000", field="chunk_variants")
    request["chunk_variants"] = chunk
    region = body.get("region")
    if region is not None:
        if not isinstance(region, dict) or not isinstance(region.get("contig"), str):
            raise InputError("{contig, start, end}", field="region")
        start, end = region.get("start", 1), region.get("end", 2**31 - 1)
        if not isinstance(start, int) or not isinstance(end, int) or start >= end:
            raise InputError("integers start < end", field="region")
        request["region"] = {"contig": region["contig"], "start": start, "end": end}
    if analysis in ("gwas", "table"):
        phenotype = body.get("phenotype")
        if not isinstance(phenotype, str) or not phenotype:
            raise InputError(
                "the outcome variable (ICD10:I25.1, age...)", field="phenotype"
            )
        request["phenotype"] = phenotype
    if analysis == "gwas":
        model = body.get("model", "logistic")
        if model not in _MODELS:
            raise InputError("logistic or linear", field="model")
        request["model"] = model
        request["covariates"] = _strings(
            body.get("covariates", []), "covariates", most=30
        )
        firth = body.get("firth", "no")
        if firth not in FIRTH_MODES:
            raise InputError(f"one of {', '.join(FIRTH_MODES)}", field="firth")
        request["firth"] = firth
    if analysis == "frequencies":
        request["strata"] = _strings(body.get("strata", []), "strata", most=3)
    if analysis == "summary":
        request["variables"] = _strings(body.get("variables"), "variables", most=32)
        quantiles = body.get("quantiles", False)
        if not isinstance(quantiles, bool):
            raise InputError("true or false", field="quantiles")
        request["quantiles"] = quantiles
    if analysis == "pca":
        components = body.get("components", 4)
        most = body.get("max_variants", 500)
        maf = body.get("min_frequency", 0.05)
        if not isinstance(components, int) or not 1 <= components <= 20:
            raise InputError("1 to 20", field="components")
        if not isinstance(most, int) or not components <= most <= 5000:
            raise InputError("components to 5000", field="max_variants")
        if not isinstance(maf, (int, float)) or not 0 < maf < 0.5:
            raise InputError("in (0, 0.5)", field="min_frequency")
        if "region" not in request:
            raise InputError("the PCA needs a region", field="region")
        r2 = body.get("ld_r2", DEFAULT_LD_R2)
        band = body.get("ld_window", DEFAULT_LD_WINDOW)
        if r2 is not None and (
            not isinstance(r2, (int, float)) or isinstance(r2, bool) or not 0 < r2 < 1
        ):
            raise InputError("in (0, 1), or null for no pruning", field="ld_r2")
        if not isinstance(band, int) or isinstance(band, bool) or not 1 <= band <= 200:
            raise InputError("1 to 200 variants", field="ld_window")
        request |= {
            "components": components,
            "max_variants": most,
            "min_frequency": maf,
            "ld_r2": r2,
            "ld_window": band,
        }
    return request
