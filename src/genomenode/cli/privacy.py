"""``genomenode privacy``: what the node's answers disclose (``docs/privacy.md``).

``privacy audit`` lists, per dataset and kind of caller, the granularity, budget,
ε, rare-allele policy and what can be learnt under the current settings. (The
operator's attack runner, ``privacy attack``, joins this group.)
"""

from __future__ import annotations

import pathlib
from typing import Any

from .options import errors_to_exit, group, json_option, node_option, print_result

__all__ = ["audit_text", "privacy", "privacy_audit"]


@group()
def privacy() -> None:
    """What the node's answers disclose, and the attacks that test it."""


@privacy.command("audit")
@node_option
@json_option
@errors_to_exit
def privacy_audit(node_dir: pathlib.Path, as_json: bool) -> None:
    """What each kind of caller can learn, per dataset, under the current settings."""
    from ..access import DatasetAccess, allowed_granularity
    from ..access.decision import Caller
    from ..disclosure.audit import CALLER_KINDS, DatasetView, describe
    from ..disclosure.settings import DisclosureSettings
    from ..node import open_node

    with open_node(node_dir) as node:
        settings = DisclosureSettings.from_values(node.config.values)
        views = []
        for row in node.published():
            document = row.description_document or {}
            configured = document.get("beacon") or {}
            access = DatasetAccess(
                id=row.id,
                security_level=row.security_level,
                granularity={
                    **DatasetAccess(row.id, row.security_level).granularity,
                    **{str(k): str(v) for k, v in dict(configured).items()},
                },
            )
            callers = {
                "anonymous": Caller(),
                "registered": Caller(subject="audit", registered=True),
                "granted": Caller(
                    subject="audit",
                    registered=True,
                    granted_datasets=frozenset({row.id}),
                ),
            }
            views.append(
                DatasetView(
                    row.id,
                    row.security_level,
                    {
                        kind: allowed_granularity(callers[kind], access)
                        for kind in CALLER_KINDS
                    },
                )
            )
        result = describe(settings, views)
    print_result(result, as_json, audit_text(result))


def audit_text(result: dict[str, Any]) -> str:
    """The audit for people: one block per dataset, one line per caller kind."""
    state = "on" if result["disclosure_enabled"] else "OFF"
    lines = [f"disclosure control: {state} (docs/privacy.md)"]
    if not result["datasets"]:
        lines.append("no published datasets")
    for dataset in result["datasets"]:
        lines.append(f"{dataset['id']} ({dataset['security_level']})")
        for kind, shown in dataset["callers"].items():
            lines.append(
                f"  {kind:10} {shown['granularity'] or '-':8} {shown['learns']}"
            )
    return "\n".join(lines)
