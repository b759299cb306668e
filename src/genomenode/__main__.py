"""``python -m genomenode``: the same as the ``genomenode`` command."""

from .cli import main

main()
