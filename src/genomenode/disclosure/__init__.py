"""Disclosure control: the one place every aggregate a node releases passes.

Thresholds, budgets per caller, the rare-allele policy, perturbation and the
DataSHIELD-style filters; see ``docs/privacy.md``. The entry points are
:class:`~genomenode.disclosure.control.DisclosureControl`'s ``release_*`` methods.
Callers above (beacon, catalogue, network, analyses) pass plain values and audit
what was withheld.
"""

__all__: list[str] = []
