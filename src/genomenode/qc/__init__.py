"""1+MG-ready quality control of a dataset's genotypes (docs/qc.md).

Sample QC (:mod:`.samples`), variant QC on the passing samples
(:mod:`.variants`), their kernels (:mod:`.kernels`), the run and its stored
results (:mod:`.run`, :mod:`.flags`) and the report (:mod:`.report`). Failing
samples and variants are flagged, never deleted; :func:`.flags.load_flags` is
how the reference and the analyses read the flags.
"""
