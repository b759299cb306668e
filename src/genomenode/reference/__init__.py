"""The Genome of Europe allele-frequency reference of a node (docs/reference.md).

For every published dataset with genotypes, the allele counts of each Genome of
Europe population (country, country × sex, sex across countries, total) over the
QC-passing samples and variants: built chunk by chunk over the VCF Zarr store
(:mod:`.build`, kernel in :mod:`.kernel`), kept beside the dataset
(:mod:`.store`), released through the node's disclosure layer with gnomAD's
``faf95`` and ``grpmax`` (:mod:`.release`), served (:mod:`.service`,
:mod:`.http`) and exported as a sites-only VCF or GDI Parquet (:mod:`.export`).
"""

__all__: list[str] = []
