"""The version of genomenode: its one home (``pyproject.toml`` repeats it; a test
checks the two agree). Importing it loads nothing else."""

__all__ = ["__version__"]

__version__ = "0.1.0"
