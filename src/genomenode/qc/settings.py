"""The QC thresholds, read once from the node's settings (``qc_*``, docs/qc.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["QcSettings"]


@dataclasses.dataclass(frozen=True)
class QcSettings:
    """Every threshold of sample and variant QC; the defaults are config.py's."""

    sample_min_call_rate: float = 0.9
    sample_min_mean_depth: float = 15.0
    sample_min_mean_gq: float = 20.0
    sample_outlier_mads: float = 4.0
    sex_female_max_f: float = 0.2
    sex_male_min_f: float = 0.8
    kinship_duplicate: float = 0.354
    kinship_related: float = 0.0884
    common_min_maf: float = 0.05
    common_max_variants: int = 10000
    pca_components: int = 10
    pca_outlier_sd: float = 6.0
    variant_min_call_rate: float = 0.9
    hwe_min_p: float = 1e-6
    genotype_min_gq: float = 20.0
    genotype_min_depth: float = 10.0
    genotype_min_allele_balance: float = 0.2
    min_inbreeding_coeff: float = -0.3

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> QcSettings:
        """From a node's resolved settings (``config.values``): ``qc_<field>``."""
        return cls(
            **{
                field.name: values[f"qc_{field.name}"]
                for field in dataclasses.fields(cls)
                if f"qc_{field.name}" in values
            }
        )

    def as_dict(self) -> dict[str, Any]:
        """The thresholds as the report records them."""
        return dataclasses.asdict(self)
