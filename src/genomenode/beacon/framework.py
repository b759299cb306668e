"""Beacon v2 framework documents: info, service-info, configuration, map, entry types.

Pure functions: each takes what it describes (the node's :class:`BeaconIdentity`, the
datasets it publishes) and returns the whole JSON-ready response, ``meta`` included,
valid against the official Beacon v2.1.1 schema (``tests/beacon/test_framework.py``
checks every one). Nothing here reads the database or knows about HTTP.

The entry types this node serves are declared once, in :mod:`.entry_types`; the
configuration, the map, the entry-types response and the HTTP routes are all built
from them.

Examples
--------
>>> identity = BeaconIdentity.for_node("fi-node", "FI", "https://node.example/api")
>>> map_response(identity)["response"]["endpointSets"]["individual"]["rootUrl"]
'https://node.example/api/individuals'
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from genomenode.beacon.schemas import BASE_URI
from genomenode.errors import ConfigError
from genomenode.version import __version__

if TYPE_CHECKING:
    from genomenode.store.node import Node
from .entry_types import (
    API_VERSION,
    ENTRY_TYPES,
    ENTRY_TYPES_BY_ENDPOINT,
    FILTERING_TERMS_PATHS,
    MODEL_URI,
    NESTED,
)

__all__ = [
    "BEACON_ID_PREFIX",
    "ENVIRONMENTS",
    "BeaconIdentity",
    "DatasetSummary",
    "configuration_response",
    "entry_types_response",
    "error_response",
    "identity_from_node",
    "info_response",
    "informational_meta",
    "map_response",
    "service_info_response",
]

_RESPONSE_URI = BASE_URI + "framework/json/responses/"
_CONFIGURATION_URI = BASE_URI + "framework/json/configuration/"
#: Beacon ids are ``org.genomenode.<node_id>``: reverse-domain, unique per node id.
BEACON_ID_PREFIX = "org.genomenode."
#: Allowed ``environment`` values, and the configuration's ``productionStatus`` each
#: one maps to (the info schema's fourth value, "staging", has no maturity level).
ENVIRONMENTS: dict[str, str] = {"prod": "PROD", "test": "TEST", "dev": "DEV"}


@dataclasses.dataclass(frozen=True)
class BeaconIdentity:
    """Who this Beacon is: what every framework response says about the node.

    Build one with :func:`identity_from_node` or :meth:`for_node`.

    Attributes
    ----------
    beacon_id
        Reverse-domain id, ``org.genomenode.<node_id>`` by default.
    name, description
        Human name and description of the Beacon.
    node_id, country
        The node's id in the network and its ISO 3166-1 alpha-2 country.
    organisation_id, organisation_name, organisation_url
        The organisation running the node (``organisation_url`` defaults to
        ``welcome_url``).
    contact_email
        Where to write about the Beacon; ``None`` leaves contacts out.
    base_url
        The external, absolute URL of the API root (``https://host/api``), without a
        trailing slash; every URL in the map is under it.
    environment
        ``"prod"``, ``"test"`` or ``"dev"``.
    welcome_url
        The Beacon's welcome page (defaults to ``base_url``).
    alternative_url, documentation_url
        Optional further URLs; left out of the responses when ``None``.
    api_version
        The Beacon API version served, :data:`API_VERSION`.
    version
        The genomenode version running the node.
    """

    beacon_id: str
    name: str
    node_id: str
    country: str
    organisation_id: str
    organisation_name: str
    base_url: str
    environment: str = "dev"
    description: str = ""
    contact_email: str | None = None
    welcome_url: str = ""
    organisation_url: str = ""
    alternative_url: str | None = None
    documentation_url: str | None = None
    api_version: str = API_VERSION
    version: str = __version__

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError(
                f"Beacon base URL {self.base_url!r} must be an absolute http(s) URL "
                "such as https://node.example.org/api"
            )
        if self.environment not in ENVIRONMENTS:
            raise ConfigError(
                f"Beacon environment {self.environment!r}: use one of "
                + ", ".join(ENVIRONMENTS)
            )
        # Frozen, so defaults that depend on other fields are set this way.
        base_url = self.base_url.rstrip("/")
        object.__setattr__(self, "base_url", base_url)
        object.__setattr__(self, "welcome_url", self.welcome_url or base_url)
        object.__setattr__(
            self, "organisation_url", self.organisation_url or self.welcome_url
        )

    @classmethod
    def for_node(
        cls, node_id: str, country: str, base_url: str, **options: Any
    ) -> BeaconIdentity:
        """Derive an identity from a node id, filling defaults for the rest.

        Parameters
        ----------
        node_id, country
            The node's id and country code.
        base_url
            External URL of the API root.
        **options
            Any other :class:`BeaconIdentity` field; ``None`` values take the default.

        Raises
        ------
        ConfigError
            If the node id is empty, or a value is invalid.
        """
        if not node_id:
            raise ConfigError(
                "the node has no node_id; set node_id in genomenode.yaml or "
                "GENOMENODE_NODE_ID to serve a Beacon"
            )
        given = {key: value for key, value in options.items() if value is not None}
        fields: dict[str, Any] = {
            "beacon_id": BEACON_ID_PREFIX + node_id,
            "name": f"genomenode Beacon {node_id}",
            "organisation_id": node_id,
            "organisation_name": f"genomenode node {node_id} ({country})",
            "description": (
                f"Beacon v2 of the genomenode node {node_id} ({country}), "
                "a node of a federated genome-data network."
            ),
        }
        fields.update(given)
        return cls(node_id=node_id, country=country, base_url=base_url, **fields)

    @property
    def production_status(self) -> str:
        """The configuration's ``productionStatus``: ``PROD``, ``TEST`` or ``DEV``."""
        return ENVIRONMENTS[self.environment]

    def url(self, path: str) -> str:
        """An absolute URL under :attr:`base_url`."""
        return f"{self.base_url}/{path.lstrip('/')}"


def identity_from_node(
    node: Node,
    base_url: str,
    *,
    environment: str = "dev",
    name: str | None = None,
    description: str | None = None,
    organisation_id: str | None = None,
    organisation_name: str | None = None,
    organisation_url: str | None = None,
    contact_email: str | None = None,
    welcome_url: str | None = None,
    alternative_url: str | None = None,
    documentation_url: str | None = None,
) -> BeaconIdentity:
    """The Beacon identity of an opened node.

    Parameters
    ----------
    node
        The node; its ``node_id`` and ``country`` settings are used.
    base_url
        External URL of the node's API root, e.g. ``https://node.example.org/api``.
    environment, name, description, organisation_id, organisation_name, \
organisation_url, contact_email, welcome_url, alternative_url, documentation_url
        Optional; see :class:`BeaconIdentity`. ``None`` takes the default.

    Returns
    -------
    BeaconIdentity

    Raises
    ------
    ConfigError
        If the node has no ``node_id``, or ``base_url`` or ``environment`` is invalid.
    """
    return BeaconIdentity.for_node(
        node.config.node_id,
        node.config.country,
        base_url,
        environment=environment,
        name=name,
        description=description,
        organisation_id=organisation_id,
        organisation_name=organisation_name,
        organisation_url=organisation_url,
        contact_email=contact_email,
        welcome_url=welcome_url,
        alternative_url=alternative_url,
        documentation_url=documentation_url,
    )


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """What ``/info`` says about one published dataset (filled by the caller)."""

    id: str
    name: str
    description: str
    security_level: str
    created_at: dt.datetime
    published_at: dt.datetime | None
    num_individuals: int
    num_variants: int

    def document(self) -> dict[str, Any]:
        """The dataset as a Beacon ``datasets`` default-model document."""
        updated = self.published_at or self.created_at
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "createDateTime": _timestamp(self.created_at),
            "updateDateTime": _timestamp(updated),
            "info": {
                "securityLevel": self.security_level,
                "numIndividuals": self.num_individuals,
                "numVariants": self.num_variants,
            },
        }


def _utc(moment: dt.datetime) -> dt.datetime:
    # Naive datetimes come from SQLite, which drops the zone genomenode stored: UTC.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _timestamp(moment: dt.datetime) -> str:
    return _utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def informational_meta(
    identity: BeaconIdentity, returned_schemas: Iterable[Mapping[str, str]] = ()
) -> dict[str, Any]:
    """The ``meta`` of a framework response (``beaconInformationalResponseMeta``).

    Result responses extend it with ``returnedGranularity``,
    ``receivedRequestSummary`` and ``testMode`` (``beaconResponseMeta``).

    Parameters
    ----------
    identity
        The Beacon answering.
    returned_schemas
        ``{"entityType": ..., "schema": ...}`` items; see
        :meth:`EntryType.returned_schema`.

    Returns
    -------
    dict
        ``{"beaconId", "apiVersion", "returnedSchemas"}``.
    """
    return {
        "beaconId": identity.beacon_id,
        "apiVersion": identity.api_version,
        "returnedSchemas": [dict(schema) for schema in returned_schemas],
    }


def _framework_schema(entity: str, uri: str) -> list[dict[str, str]]:
    return [{"entityType": entity, "schema": uri}]


def _organization(identity: BeaconIdentity) -> dict[str, Any]:
    organization: dict[str, Any] = {
        "id": identity.organisation_id,
        "name": identity.organisation_name,
        "welcomeUrl": identity.organisation_url,
        "info": {"country": identity.country},
    }
    if identity.contact_email:
        organization["contactUrl"] = f"mailto:{identity.contact_email}"
    return organization


def info_response(
    identity: BeaconIdentity, datasets: Sequence[DatasetSummary]
) -> dict[str, Any]:
    """The ``/`` and ``/info`` response (``beaconInfoResponse``).

    Parameters
    ----------
    identity
        The Beacon answering.
    datasets
        The published datasets the caller may list; they appear under
        ``response.datasets``, where peers' aggregators read them.

    Returns
    -------
    dict
        The whole response. ``createDateTime`` / ``updateDateTime`` are the first
        dataset creation and the last publication, absent while there is none.
    """
    response: dict[str, Any] = {
        "id": identity.beacon_id,
        "name": identity.name,
        "apiVersion": identity.api_version,
        "environment": identity.environment,
        "organization": _organization(identity),
        "description": identity.description,
        "version": identity.version,
        "welcomeUrl": identity.welcome_url,
        "info": {"nodeId": identity.node_id, "country": identity.country},
        "datasets": [dataset.document() for dataset in datasets],
    }
    if identity.alternative_url:
        response["alternativeUrl"] = identity.alternative_url
    if datasets:
        created = min(_utc(dataset.created_at) for dataset in datasets)
        updated = max(_utc(d.published_at or d.created_at) for d in datasets)
        response["createDateTime"] = _timestamp(created)
        response["updateDateTime"] = _timestamp(updated)
    return {
        "meta": informational_meta(
            identity,
            _framework_schema("info", _RESPONSE_URI + "beaconInfoResponse.json"),
        ),
        "response": response,
    }


def service_info_response(identity: BeaconIdentity) -> dict[str, Any]:
    """The ``/service-info`` response (GA4GH service-info 1.0.0).

    Returns
    -------
    dict
        Type ``org.ga4gh:beacon`` at the served Beacon version (semantic, without
        the ``v``); ``version`` is the genomenode version.
    """
    document: dict[str, Any] = {
        "id": identity.beacon_id,
        "name": identity.name,
        "type": {
            "group": "org.ga4gh",
            "artifact": "beacon",
            "version": identity.api_version.removeprefix("v"),
        },
        "description": identity.description,
        "organization": {
            "name": identity.organisation_name,
            "url": identity.organisation_url,
        },
        "environment": identity.environment,
        "version": identity.version,
    }
    if identity.contact_email:
        document["contactUrl"] = f"mailto:{identity.contact_email}"
    if identity.documentation_url:
        document["documentationUrl"] = identity.documentation_url
    return document


def _entry_type_definitions() -> dict[str, Any]:
    return {entry.id: entry.definition() for entry in ENTRY_TYPES.values()}


def configuration_response(
    identity: BeaconIdentity, security_levels: Iterable[str]
) -> dict[str, Any]:
    """The ``/configuration`` response (``beaconConfigurationResponse``).

    Parameters
    ----------
    identity
        The Beacon answering.
    security_levels
        The levels of the published datasets (``PUBLIC``, ``REGISTERED``,
        ``CONTROLLED``); repeated or differently cased values are folded.

    Returns
    -------
    dict
        Maturity from the environment, granularity ``boolean`` by default (a client
        asks for more), and every entry type.

    Raises
    ------
    ValueError
        If a security level is not one of the three Beacon levels.
    """
    order = ("PUBLIC", "REGISTERED", "CONTROLLED")
    levels = {level.upper() for level in security_levels}
    unknown = levels.difference(order)
    if unknown:
        raise ValueError(f"unknown Beacon security levels: {sorted(unknown)}")
    return {
        "meta": informational_meta(
            identity,
            _framework_schema(
                "configuration",
                _CONFIGURATION_URI + "beaconConfigurationSchema.json",
            ),
        ),
        "response": {
            "$schema": _CONFIGURATION_URI + "beaconConfigurationSchema.json",
            "maturityAttributes": {"productionStatus": identity.production_status},
            "securityAttributes": {
                "defaultGranularity": "boolean",
                "securityLevels": [level for level in order if level in levels],
            },
            "entryTypes": _entry_type_definitions(),
        },
    }


def map_response(identity: BeaconIdentity) -> dict[str, Any]:
    """The ``/map`` response (``beaconMapResponse``): every endpoint, absolute.

    Returns
    -------
    dict
        One endpoint set per entry type, keyed by entry type id, with ``rootUrl``,
        ``singleEntryUrl``, ``filteringTermsUrl`` (the entry type's own, else the
        node-wide ``/filtering_terms``) and the :data:`NESTED` endpoints, keyed by
        the returned entry type id.
    """
    endpoint_sets: dict[str, Any] = {}
    for entry in ENTRY_TYPES.values():
        root = identity.url(entry.endpoint)
        terms = FILTERING_TERMS_PATHS.get(entry.endpoint, "filtering_terms")
        endpoint_sets[entry.id] = {
            "entryType": entry.id,
            "rootUrl": root,
            "singleEntryUrl": root + "/{id}",
            "filteringTermsUrl": identity.url(terms),
            "openAPIEndpointsDefinition": f"{MODEL_URI}{entry.schema_folder}"
            "/endpoints.json",
            "endpoints": {
                ENTRY_TYPES_BY_ENDPOINT[nested].id: {
                    "returnedEntryType": ENTRY_TYPES_BY_ENDPOINT[nested].id,
                    "url": f"{root}/{{id}}/{nested}",
                }
                for nested in NESTED[entry.endpoint]
            },
        }
    return {
        "meta": informational_meta(
            identity,
            _framework_schema("map", _CONFIGURATION_URI + "beaconMapSchema.json"),
        ),
        "response": {
            "$schema": _CONFIGURATION_URI + "beaconMapSchema.json",
            "endpointSets": endpoint_sets,
        },
    }


def entry_types_response(identity: BeaconIdentity) -> dict[str, Any]:
    """The ``/entry_types`` response (``beaconEntryTypesResponse``)."""
    return {
        "meta": informational_meta(
            identity,
            _framework_schema(
                "entryType", _CONFIGURATION_URI + "entryTypesSchema.json"
            ),
        ),
        "response": {"entryTypes": _entry_type_definitions()},
    }


def error_response(
    identity: BeaconIdentity,
    status: int,
    message: str,
    *,
    received_request_summary: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``beaconErrorResponse``: ``meta`` and ``error {errorCode, errorMessage}``.

    Parameters
    ----------
    identity
        The Beacon answering.
    status
        The HTTP status, repeated as ``errorCode``.
    message
        What went wrong, for the client.
    received_request_summary
        The request as understood, when it got that far; otherwise a minimal
        summary (no schemas, empty pagination, ``boolean`` granularity) stands in,
        because the schema requires one.
    """
    summary = received_request_summary or {
        "apiVersion": identity.api_version,
        "requestedSchemas": [],
        "pagination": {},
        "requestedGranularity": "boolean",
    }
    meta = informational_meta(identity)
    meta["returnedGranularity"] = "boolean"
    meta["receivedRequestSummary"] = dict(summary)
    return {"meta": meta, "error": {"errorCode": status, "errorMessage": message}}
