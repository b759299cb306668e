"""Federated analyses, the node's side: whitelisted analyses over the VCF Zarr
store and the clinical data that return sufficient statistics and aggregates
only, under the node's disclosure control (docs/analysis.md).

- :mod:`.statistics`: the numeric kernels (vectorised over variants) and their
  naive twins;
- :mod:`.cohort`: outcomes and covariates per genotype column, genotype windows
  read in chunks with Dask;
- :mod:`.service`: the whitelisted analyses and their disclosure filters;
- :mod:`.http`: the node's routes under ``/analysis`` (authorised, audited);
- :mod:`.codec`: exact arrays in JSON;
- :mod:`.federated`: the coordinator's arithmetic (IRLS step, tests, PCA);
- :mod:`.plots`: Manhattan and QQ plots.
"""

__all__: list[str] = []
