"""The ``genomenode`` command: a thin layer over the library.

One module per command group, each command a few lines over one library call:

==============  =========================================================
``nodes``       ``init``
``simulate``    ``simulate``
``datasets``    ``ingest`` (``--dry-run``), ``datasets`` (``scaffold``), ``discard``
``lifecycle``   ``datasets unpublish|publish|set-access|remove``
``serve``       ``serve``
``demo``        ``demo``
``audit``       ``audit verify|checkpoint``
``access``      ``access ...``: the DAC side of the access workflow
``researcher``  ``login``, ``logout``, ``apply``, ``applications``, ``grants``
``keys``        ``keys generate``
``fetch``       ``fetch`` (with the login's token)
``network``     ``network serve|status|audit-verify|audit-checkpoint``
``privacy``     ``privacy audit`` (and the operator's ``privacy attack``)
``analysis``    ``analysis submit|status|results|cancel`` (through a network)
``reference``   ``reference build|export`` (the allele-frequency reference)
``qc``          ``qc run|report``: 1+MG-ready quality control of a dataset
``docs``        ``docs``
==============  =========================================================

Shared options (``--node`` with ``$GENOMENODE_NODE``, ``--json``, the listen
options of servers) and the one error wrapper are in :mod:`.options`. Command
modules import only click at the top, and each command imports its library
inside the function, so that ``genomenode --help`` starts in a fraction of a
second (``tests/cli/test_startup.py``, ``bench/cli.py``).
"""

from __future__ import annotations

import click

from ..version import __version__
from . import (
    access,
    analysis,
    audit,
    datasets,
    demo,
    docs,
    fetch,
    keys,
    lifecycle,
    network,
    nodes,
    privacy,
    privacy_attack,
    qc,
    reference,
    researcher,
    serve,
)
from . import simulate as simulate_module
from .options import group

__all__ = ["cli", "main"]


@group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genomenode")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """genomenode: a node of a federated European genome network.

    Set GENOMENODE_NODE to a node directory instead of giving --node to each
    command. Every command takes --json for scripts (servers and the demo print
    one JSON line saying what they serve). Documentation: genomenode docs.
    """
    import logging

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # bio2zarr reports every array of every partition at INFO; keep that for -vv.
    logging.getLogger("bio2zarr").setLevel(logging.WARNING if verbose < 2 else level)


for _command in (
    nodes.init,
    simulate_module.simulate,
    datasets.ingest,
    datasets.datasets,
    datasets.discard,
    serve.serve,
    demo.demo,
    audit.audit,
    access.access,
    keys.keys,
    fetch.fetch,
    network.network,
    privacy.privacy,
    analysis.analysis,
    reference.reference,
    qc.qc,
    docs.docs,
    *researcher.RESEARCHER_COMMANDS,
):
    cli.add_command(_command)
for _command in lifecycle.LIFECYCLE_COMMANDS:
    datasets.datasets.add_command(_command)
privacy.privacy.add_command(privacy_attack.attack)


def main() -> None:
    """Entry point of the ``genomenode`` command."""
    cli()
