"""The node store: genotypes in VCF Zarr, encrypted files, metadata database."""
