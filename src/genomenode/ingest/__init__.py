"""Ingest: a cohort (VCF, clinical data, dataset.yaml) becomes a published dataset."""

from .pipeline import STEPS, IngestResult, discard, ingest

__all__ = ["STEPS", "IngestResult", "discard", "ingest"]
