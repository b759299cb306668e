"""NETWORK.yaml: the nodes a network aggregator asks, validated.

The file (documented in ``docs/network.md``)::

    format_version: 1
    network_id: gdi-demo
    public_url: https://network.example.org     # the network's own URL, no /api
    timeout_seconds: 5                          # per node, optional (default 5)
    environment: prod                           # prod, test or dev (default dev)
    circuit_breaker:                            # optional, per node
      failure_threshold: 5                      # consecutive failures; 0: never open
      open_seconds: 30                          # open this long, then one probe
    max_connections_per_node: 16                # concurrent requests to one node
    max_body_bytes: 262144                      # a larger POST body is refused (413)
    max_query_bytes: 16384                      # a longer query string is refused
    operator_token: ...                         # optional; better given as
                                                # $GENOMENODE_NETWORK_OPERATOR_TOKEN
    trusted_brokers:                            # who may own analysis jobs; the
      - issuer: https://broker.example.org      # portal signs visitors in at the
        jku: https://broker.example.org/.well-known/jwks.json   # first one
    nodes:
      - id: fi-node
        country: FI                             # ISO 3166-1 alpha-2
        url: https://fi.node.example.org        # the node's base URL, no /api
        jwks: https://fi.node.example.org/.well-known/jwks.json   # optional

Every error is a :class:`~genomenode.errors.ConfigError` naming the file and the
field (``nodes[1].url``). The registry's node ids are the network's truth: what a
node says about itself never renames it.

Examples
--------
>>> registry = load_registry("NETWORK.yaml")  # doctest: +SKIP
>>> [node.id for node in registry.nodes]  # doctest: +SKIP
['fi-node', 'se-node']
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import yaml

from genomenode.access.tokens import TrustedIssuer
from genomenode.config import Secret, is_development_identity_provider
from genomenode.errors import ConfigError

from .breaker import BreakerSettings

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS_PER_NODE",
    "DEFAULT_MAX_QUERY_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
    "FORMAT_VERSION",
    "MIN_OPERATOR_TOKEN_LENGTH",
    "RegisteredNode",
    "Registry",
    "load_registry",
    "parse_registry",
]

#: The NETWORK.yaml format this genomenode reads.
FORMAT_VERSION = 1
#: How long the network waits for one node, when the file does not say.
DEFAULT_TIMEOUT_SECONDS = 5.0
#: Concurrent requests (connections) from the network to one node, at most.
DEFAULT_MAX_CONNECTIONS_PER_NODE = 16
#: A POST body larger than this is refused (413) before any node is asked.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
#: A query string longer than this is refused (400) before any node is asked.
DEFAULT_MAX_QUERY_BYTES = 16 * 1024
#: An operator token shorter than this is refused: it could be guessed.
MIN_OPERATOR_TOKEN_LENGTH = 16

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_NODE_KEYS = frozenset({"id", "country", "url", "jwks"})
_BREAKER_KEYS = frozenset({"failure_threshold", "open_seconds"})
_BROKER_KEYS = frozenset({"issuer", "jku"})
_TOP_KEYS = frozenset(
    {
        "format_version",
        "network_id",
        "public_url",
        "timeout_seconds",
        "environment",
        "circuit_breaker",
        "max_connections_per_node",
        "max_body_bytes",
        "max_query_bytes",
        "operator_token",
        "trusted_brokers",
        "nodes",
    }
)


@dataclasses.dataclass(frozen=True)
class RegisteredNode:
    """One node of the network, as the registry declares it.

    Attributes
    ----------
    id
        The node's id in the network; result sets are tagged with it.
    country
        ISO 3166-1 alpha-2 code (upper case).
    url
        The node's base URL without ``/api`` and without a trailing slash.
    jwks
        URL of the node's public keys (its visas), if given.
    """

    id: str
    country: str
    url: str
    jwks: str | None = None

    @property
    def api_url(self) -> str:
        """The node's Beacon API root, ``<url>/api``."""
        return f"{self.url}/api"


@dataclasses.dataclass(frozen=True)
class Registry:
    """A validated NETWORK.yaml.

    Attributes
    ----------
    network_id
        The network's id; its Beacon id is ``org.genomenode.network.<network_id>``.
    public_url
        The network's own external URL, without ``/api`` or trailing slash.
    nodes
        The registered nodes, in file order (the order of ``info.nodes``).
    timeout_seconds
        How long one node may take to answer before it is reported ``timeout``.
    environment
        ``prod``, ``test`` or ``dev``, as the network's Beacon info reports it.
    source
        The file it was read from, if any (for messages).
    circuit_breaker
        When a node's circuit opens and for how long
        (:mod:`~genomenode.network.breaker`).
    max_connections_per_node
        Concurrent requests to one node at most; more wait for a connection.
    max_body_bytes
        The largest POST body the network forwards.
    max_query_bytes
        The longest query string the network forwards.
    operator_token
        The credential for on-demand catalogue harvests (``POST
        /catalogue/harvest``), if the file gives one.
    trusted_brokers
        The passport brokers whose tokens the network verifies itself: the
        owners of analysis jobs (:mod:`~genomenode.network.analysis_http`); the
        network's portal signs visitors in at the first. Empty: no jobs.
    """

    network_id: str
    public_url: str
    nodes: tuple[RegisteredNode, ...]
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    environment: str = "dev"
    source: str | None = None
    circuit_breaker: BreakerSettings = dataclasses.field(
        default_factory=BreakerSettings
    )
    max_connections_per_node: int = DEFAULT_MAX_CONNECTIONS_PER_NODE
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES
    operator_token: Secret | None = None
    trusted_brokers: tuple[TrustedIssuer, ...] = ()

    @property
    def beacon_id(self) -> str:
        """The network's Beacon id, ``org.genomenode.network.<network_id>``."""
        return f"org.genomenode.network.{self.network_id}"

    @property
    def api_url(self) -> str:
        """The network's Beacon API root, ``<public_url>/api``."""
        return f"{self.public_url}/api"

    def node(self, node_id: str) -> RegisteredNode:
        """The registered node with this id.

        Raises
        ------
        KeyError
            If no node has that id.
        """
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


class _Reader:
    """Builds errors that name the file and the field."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def fail(self, field: str | None, message: str) -> ConfigError:
        where = [part for part in (self.source, field and f"field {field!r}") if part]
        prefix = ", ".join(where)
        return ConfigError(f"{prefix}: {message}" if prefix else message)

    def string(self, document: Mapping[str, Any], key: str, field: str) -> str:
        if key not in document or document[key] is None:
            raise self.fail(field, "is required")
        value = document[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"must be a non-empty string, not {value!r}")
        return value.strip()

    def entry(
        self, raw: Any, where: str, keys: frozenset[str], noun: str, required: str
    ) -> Mapping[str, Any]:
        """``raw``, one entry of a list: a mapping with no key but ``keys``."""
        if not isinstance(raw, Mapping):
            raise self.fail(where, f"must be a mapping with {required}")
        extra = sorted(set(raw) - keys)
        if extra:
            raise self.fail(f"{where}.{extra[0]}", f"is not a {noun} field")
        return raw

    def url(self, document: Mapping[str, Any], key: str, field: str) -> str:
        value = self.string(document, key, field)
        if not value.startswith(("http://", "https://")):
            raise self.fail(field, f"{value!r} must be an absolute http(s) URL")
        value = value.rstrip("/")
        if value.endswith("/api"):
            raise self.fail(field, f"{value!r}: give the base URL, without /api")
        return value

    def number(
        self,
        document: Mapping[str, Any],
        key: str,
        field: str,
        *,
        default: float,
        low: float,
        high: float,
        integer: bool = False,
        low_inclusive: bool = False,
    ) -> float:
        value = document.get(key, default)
        kinds = int if integer else int | float
        in_range = (
            isinstance(value, kinds)
            and not isinstance(value, bool)
            and (low <= value if low_inclusive else low < value)
            and value <= high
        )
        if not in_range:
            what = "a whole number" if integer else "a number"
            opening = "[" if low_inclusive else "("
            raise self.fail(
                field, f"{value!r} must be {what} in {opening}{low:g}, {high:g}]"
            )
        return value


def _breaker_settings(reader: _Reader, document: Mapping[str, Any]) -> BreakerSettings:
    raw = document.get("circuit_breaker")
    if raw is None:
        return BreakerSettings()
    if not isinstance(raw, Mapping):
        raise reader.fail(
            "circuit_breaker", "must be a mapping with failure_threshold, open_seconds"
        )
    extra = sorted(set(raw) - _BREAKER_KEYS)
    if extra:
        raise reader.fail(f"circuit_breaker.{extra[0]}", "is not a breaker field")
    defaults = BreakerSettings()
    threshold = reader.number(
        raw,
        "failure_threshold",
        "circuit_breaker.failure_threshold",
        default=defaults.failure_threshold,
        low=0,
        high=10_000,
        integer=True,
        low_inclusive=True,
    )
    open_seconds = reader.number(
        raw,
        "open_seconds",
        "circuit_breaker.open_seconds",
        default=defaults.open_seconds,
        low=0,
        high=86_400,
    )
    return BreakerSettings(
        failure_threshold=int(threshold), open_seconds=float(open_seconds)
    )


def _operator_token(reader: _Reader, document: Mapping[str, Any]) -> Secret | None:
    if document.get("operator_token") is None:
        return None
    value = document["operator_token"]
    # The message never repeats the value: it is a credential.
    if not isinstance(value, str) or len(value.strip()) < MIN_OPERATOR_TOKEN_LENGTH:
        raise reader.fail(
            "operator_token",
            f"must be a string of at least {MIN_OPERATOR_TOKEN_LENGTH} characters",
        )
    return Secret(value.strip())


def _trusted_brokers(
    reader: _Reader, document: Mapping[str, Any], environment: str
) -> tuple[TrustedIssuer, ...]:
    raw = document.get("trusted_brokers")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise reader.fail("trusted_brokers", "must be a list of {issuer, jku}")
    brokers = []
    for index, entry in enumerate(raw):
        where = f"trusted_brokers[{index}]"
        entry = reader.entry(entry, where, _BROKER_KEYS, "broker", "issuer and jku")
        # The issuer is compared with a token's iss exactly (a trailing slash
        # included, as some brokers have one).
        issuer = reader.string(entry, "issuer", f"{where}.issuer")
        if not issuer.startswith(("http://", "https://")):
            raise reader.fail(f"{where}.issuer", "must be an absolute http(s) URL")
        jku = reader.string(entry, "jku", f"{where}.jku")
        if not jku.startswith(("http://", "https://")):
            raise reader.fail(f"{where}.jku", "must be an absolute http(s) URL")
        if environment == "prod" and any(
            is_development_identity_provider(url) for url in (issuer, jku)
        ):
            raise reader.fail(
                where,
                "is a genomenode development identity provider (a /dev-idp "
                "path), which gives anyone a passport; refused in prod",
            )
        brokers.append(TrustedIssuer(issuer, jku))
    return tuple(brokers)


def parse_registry(document: object, *, source: str | None = None) -> Registry:
    """Validate a decoded NETWORK.yaml document.

    Parameters
    ----------
    document
        The decoded YAML (a mapping).
    source
        Where it came from, named in error messages.

    Returns
    -------
    Registry

    Raises
    ------
    ConfigError
        If a field is missing or wrong; the message names the file and field.
    """
    reader = _Reader(source)
    if not isinstance(document, Mapping):
        raise reader.fail(None, "must be a mapping with format_version, nodes, ...")
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise reader.fail(unknown[0], "is not a NETWORK.yaml field")
    if "format_version" not in document:
        raise reader.fail("format_version", "is required (this is 1)")
    version = document["format_version"]
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise reader.fail(
            "format_version",
            f"{version!r} is not supported (this genomenode reads {FORMAT_VERSION})",
        )
    network_id = reader.string(document, "network_id", "network_id")
    if not _ID.match(network_id):
        raise reader.fail(
            "network_id", f"{network_id!r}: use letters, digits, '.', '_' and '-'"
        )
    public_url = reader.url(document, "public_url", "public_url")
    timeout = reader.number(
        document,
        "timeout_seconds",
        "timeout_seconds",
        default=DEFAULT_TIMEOUT_SECONDS,
        low=0,
        high=600,
    )
    max_connections = reader.number(
        document,
        "max_connections_per_node",
        "max_connections_per_node",
        default=DEFAULT_MAX_CONNECTIONS_PER_NODE,
        low=0,
        high=1024,
        integer=True,
    )
    max_body_bytes = reader.number(
        document,
        "max_body_bytes",
        "max_body_bytes",
        default=DEFAULT_MAX_BODY_BYTES,
        low=0,
        high=64 * 1024 * 1024,
        integer=True,
    )
    max_query_bytes = reader.number(
        document,
        "max_query_bytes",
        "max_query_bytes",
        default=DEFAULT_MAX_QUERY_BYTES,
        low=0,
        high=1024 * 1024,
        integer=True,
    )
    environment = document.get("environment", "dev")
    if environment not in ("prod", "test", "dev"):
        raise reader.fail("environment", f"{environment!r}: use prod, test or dev")
    raw_nodes = document.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise reader.fail("nodes", "must be a non-empty list of nodes")
    nodes: list[RegisteredNode] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_nodes):
        where = f"nodes[{index}]"
        raw = reader.entry(raw, where, _NODE_KEYS, "node", "id, country and url")
        node_id = reader.string(raw, "id", f"{where}.id")
        if not _ID.match(node_id):
            raise reader.fail(
                f"{where}.id", f"{node_id!r}: use letters, digits, '.', '_' and '-'"
            )
        if node_id in seen:
            raise reader.fail(f"{where}.id", f"{node_id!r} is registered twice")
        seen.add(node_id)
        if isinstance(raw.get("country"), bool):
            # YAML 1.1 reads an unquoted NO (Norway) as false.
            raise reader.fail(
                f"{where}.country", "is a boolean: quote the code, e.g. 'NO'"
            )
        country = reader.string(raw, "country", f"{where}.country")
        if not _COUNTRY.match(country):
            raise reader.fail(
                f"{where}.country",
                f"{country!r} must be an ISO 3166-1 alpha-2 code such as FI",
            )
        url = reader.url(raw, "url", f"{where}.url")
        jwks = (
            reader.url(raw, "jwks", f"{where}.jwks")
            if raw.get("jwks") is not None
            else None
        )
        nodes.append(RegisteredNode(id=node_id, country=country, url=url, jwks=jwks))
    return Registry(
        network_id=network_id,
        public_url=public_url,
        nodes=tuple(nodes),
        timeout_seconds=float(timeout),
        environment=str(environment),
        source=source,
        circuit_breaker=_breaker_settings(reader, document),
        max_connections_per_node=int(max_connections),
        max_body_bytes=int(max_body_bytes),
        max_query_bytes=int(max_query_bytes),
        operator_token=_operator_token(reader, document),
        trusted_brokers=_trusted_brokers(reader, document, str(environment)),
    )


def load_registry(path: str | os.PathLike[str]) -> Registry:
    """Read and validate a NETWORK.yaml.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    Registry

    Raises
    ------
    ConfigError
        If the file cannot be read, is not YAML, or a field is wrong (the message
        names the file and the field).
    """
    source = os.fspath(path)
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{source}: cannot read: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    return parse_registry(document, source=source)
