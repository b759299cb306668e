"""``genomenode simulate``: a realistic synthetic cohort."""

from __future__ import annotations

import pathlib
import sys
from typing import TYPE_CHECKING, Any

import click

from .options import command, errors_to_exit, json_option, print_result

if TYPE_CHECKING:
    from ..simulate import SimulationResult

__all__ = ["simulate"]


@command()
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=pathlib.Path))
@click.option("--samples", default=2000, show_default=True, type=click.IntRange(2))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option(
    "--length",
    default=5_000_000,
    show_default=True,
    type=click.IntRange(1000),
    help="Base pairs of chromosome 1 to simulate.",
)
@click.option("--country", default="FI", show_default=True)
@click.option(
    "--security-level",
    default="CONTROLLED",
    show_default=True,
    type=click.Choice(["PUBLIC", "REGISTERED", "CONTROLLED"]),
)
@click.option("--dataset-id", default=None, help="Default: <country>-sim-<seed>.")
@click.option(
    "--countries",
    default=None,
    help="Multi-country mode: comma-separated codes (FI,IT,PT), one cohort each "
    "under OUT_DIR/<country>, all from one shared history; --samples is per country.",
)
@click.option(
    "--vcz",
    is_flag=True,
    help="Write the genotypes as VCF Zarr (<dataset-id>.vcz) straight from the "
    "simulation, without VCF text (no DP/GQ): for cohorts too large for a VCF.",
)
@json_option
@errors_to_exit
def simulate(
    out_dir: pathlib.Path,
    samples: int,
    seed: int,
    length: int,
    country: str,
    security_level: str,
    dataset_id: str | None,
    countries: str | None,
    vcz: bool,
    as_json: bool,
) -> None:
    """Simulate a cohort (msprime) with clinical data and its dataset.yaml."""
    from ..simulate import simulate_cohort, simulate_countries

    if countries is not None:
        if vcz:
            raise click.UsageError("--vcz writes one cohort: leave out --countries")
        try:
            results = simulate_countries(
                out_dir,
                countries=[code.strip() for code in countries.split(",")],
                samples=samples,
                seed=seed,
                length=length,
                security_levels=security_level,
                progress=not as_json and sys.stderr.isatty(),
            )
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        cohorts = [_summary(item) for item in results]
        print_result(
            {"cohorts": cohorts},
            as_json,
            "\n".join(
                f"Simulated {item['num_samples']} samples × {item['num_variants']} "
                f"variants ({security_level}): {item['dataset_yaml']}"
                for item in cohorts
            ),
        )
        return
    try:
        result = simulate_cohort(
            out_dir,
            samples=samples,
            seed=seed,
            length=length,
            country=country,
            security_level=security_level,
            dataset_id=dataset_id,
            progress=not as_json and sys.stderr.isatty(),
            vcz=vcz,
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    print_result(
        _summary(result),
        as_json,
        f"Simulated {result.num_samples} samples × {result.num_variants} variants "
        f"({security_level}): {result.dataset_yaml}",
    )


def _summary(result: SimulationResult) -> dict[str, Any]:
    """What ``--json`` prints of one simulated cohort."""
    return {
        "dataset_id": result.dataset_id,
        "dataset_yaml": str(result.dataset_yaml),
        "vcf": str(result.vcf_path),
        "num_samples": result.num_samples,
        "num_variants": result.num_variants,
    }
