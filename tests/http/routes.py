"""What the fuzz tests need to know of each route that reads a body.

Each POST/PUT route of the node and the network gets a :class:`BodyRoute`: the
path params that get a request past the lookups (real ids), who asks, which body
fields carry ids (where odd characters go) and which one is a list (where a huge
array goes). ``body_routes`` fails when an app grows a route not described here,
so a new route is fuzzed from its first commit.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .conftest import CONTROLLED, Ids, Passports

#: Fields of a Beacon request body that carry ids.
BEACON_IDS = ("filters", "referenceName", "apiVersion")


@dataclasses.dataclass(frozen=True)
class BodyRoute:
    """One POST or PUT route, ready to send a body to."""

    method: str
    template: str
    path: str
    # Passports stay out of failure reports.
    headers: Mapping[str, str] = dataclasses.field(repr=False)
    id_fields: tuple[str, ...]
    list_field: str | None
    beacon: bool
    #: False: the route ignores its body, so only "no 5xx" holds for any body.
    reads_body: bool = True

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _fill(template: str, values: Mapping[str, str]) -> str:
    path = template
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", urllib.parse.quote(value, safe=""))
    assert "{" not in path, f"no value for a parameter of {template}"
    return path


def _describe(
    method: str, template: str, passports: Passports, ids: Ids
) -> BodyRoute | None:
    values = {
        "entry_id": CONTROLLED,
        "object_id": CONTROLLED,
        "application_id": str(ids.submitted_application),
        "action": "approve",
        "access_id": "crypt4gh",
        "dataset_id": CONTROLLED,
        # No such job: a cancel is refused before its body is looked at.
        "job_id": "0" * 32,
    }

    def route(**fields: Any) -> BodyRoute:
        return BodyRoute(
            method=method, template=template, path=_fill(template, values), **fields
        )

    if template.startswith("/api"):
        return route(
            headers=passports.researcher,
            id_fields=BEACON_IDS,
            list_field="filters",
            beacon=True,
        )
    if template == "/access/applications/{application_id}/{action}":
        return route(
            headers=passports.dac,
            id_fields=("comment", "ends_at"),
            list_field=None,
            beacon=False,
        )
    if template.startswith("/access/applications"):
        return route(
            headers=passports.researcher,
            id_fields=("dataset", "project_title", "purpose_text", "members"),
            list_field="members",
            beacon=False,
        )
    if template.startswith("/htsget/"):
        return route(
            headers=passports.researcher,
            id_fields=("referenceName", "regions", "format", "class"),
            list_field="regions",
            beacon=False,
        )
    if template.startswith("/ga4gh/drs/v1/objects/{object_id}"):
        values["object_id"] = ids.drs_objects[0]
        return route(
            headers=passports.researcher,
            id_fields=("expand", "passports"),
            list_field="passports",
            beacon=False,
        )
    if template == "/ga4gh/drs/v1/objects":
        return route(
            headers=passports.researcher,
            id_fields=("bulk_object_ids", "expand"),
            list_field="bulk_object_ids",
            beacon=False,
        )
    if template == "/ga4gh/drs/v1/objects/access":
        return route(
            headers=passports.researcher,
            id_fields=("bulk_object_access_ids",),
            list_field="bulk_object_access_ids",
            beacon=False,
        )
    if template == "/catalogue/harvest":
        # The network harvests its nodes now; no body is read.
        return route(
            headers={},
            id_fields=("id",),
            list_field=None,
            beacon=False,
            reads_body=False,
        )
    if template.startswith("/analysis/datasets/"):
        # The list each analysis reads (where a huge array goes).
        lists = {"summary": "variables", "frequencies": "strata", "gram": "variants"}
        return route(
            headers=passports.researcher,
            id_fields=("model", "outcome", "covariates", "strata", "variables"),
            list_field=lists.get(template.rsplit("/", 1)[-1], "covariates"),
            beacon=False,
        )
    if template == "/analysis/jobs":
        return route(
            headers=passports.researcher,
            id_fields=("analysis", "datasets", "phenotype", "covariates"),
            list_field="datasets",
            beacon=False,
        )
    if template == "/analysis/jobs/{job_id}/cancel":
        return route(
            headers=passports.researcher,
            id_fields=("reason",),
            list_field=None,
            beacon=False,
            reads_body=False,
        )
    if template == "/access/relay-keys":
        # Only a trusted network's signed request gets past the assertion check
        # to its body; here it is refused (401/404) before the body is read.
        # The body's own checks are in tests/access/test_relay_http.py.
        return route(
            headers={},
            id_fields=("agreement_kid",),
            list_field=None,
            beacon=False,
            reads_body=False,
        )
    if template == "/dev-idp/device_authorization":
        return route(
            headers={}, id_fields=("client_id", "scope"), list_field=None, beacon=False
        )
    if template == "/dev-idp/authorize":
        return route(
            headers={},
            id_fields=("client_id", "redirect_uri", "code_challenge", "subject"),
            list_field=None,
            beacon=False,
        )
    if template == "/dev-idp/device":
        return route(
            headers={},
            id_fields=("user_code", "subject", "action"),
            list_field=None,
            beacon=False,
        )
    if template == "/dev-idp/token":
        return route(
            headers={},
            id_fields=("subject", "visas"),
            list_field="visas",
            beacon=False,
        )
    return None


def body_routes(
    app_routes: list[tuple[str, str]], passports: Passports, ids: Ids
) -> list[BodyRoute]:
    """Every POST/PUT route of an app, described; fails on one not known here."""
    described = []
    for method, template in app_routes:
        if method not in ("POST", "PUT"):
            continue
        route = _describe(method, template, passports, ids)
        assert route is not None, (
            f"{method} {template} reads a body: describe it in tests/http/routes.py"
        )
        described.append(route)
    return described
