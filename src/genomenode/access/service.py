"""The access service of a node: the passport verifier, the audit writer, the
node's visa keys and the trusted networks, built once per process from the node's
settings (:func:`build_access_service`) and kept as ``app.state.access``.

Routes reach it through :func:`genomenode.access.callers.access_service`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ConfigError, TokenError
from ..store.models import STATUS_PUBLISHED, Dataset
from ..store.node import Node
from . import applications
from .audit import AuditWriter
from .authorize import Authoriser, JsonFetcher, rejected_visas
from .decision import Caller, DecisionRecord
from .devidp import DevIdentityProvider
from .network_trust import NetworkCaller, NetworkVerifier
from .relay_keys import RelaySecret
from .tokens import Identity, JwksCache, TokenVerifier, TrustedIssuer
from .visas import GrantVisa, SigningKeys, issue_grant_visa, node_visa_keys

__all__ = ["AccessService", "build_access_service"]


@dataclasses.dataclass
class AccessService:
    """What the access routes and
    :func:`~genomenode.access.callers.caller_of` share (one per process)."""

    authoriser: Authoriser
    audit: AuditWriter
    signing_keys: SigningKeys
    issuer: str
    jku: str
    network_verifier: NetworkVerifier | None = None
    network_audiences: tuple[str, ...] = ()
    require_network_assertion: bool = False

    def authenticate(self, authorization: str | None) -> tuple[Identity | None, Caller]:
        """Identity and caller of a request; a bad token is audited, then raised."""
        try:
            return self.authoriser.caller_for(authorization)
        except TokenError as error:
            self.audit.record(
                actor="unknown",
                action="auth.passport",
                outcome="deny",
                reason=str(error),
            )
            raise

    def verify_network(
        self, assertion: str, *, method: str, path_and_query: str, body: bytes
    ) -> NetworkCaller | None:
        """The trusted network that relayed a request (None: no trusted network
        signed it, or none is trusted); a bad assertion is audited, then raised."""
        if self.network_verifier is None:
            return None
        try:
            return self.network_verifier.verify(
                assertion,
                audience=self.network_audiences,
                method=method,
                path_and_query=path_and_query,
                body=body,
            )
        except TokenError as error:
            self.audit.record(
                actor="unknown",
                action="auth.network",
                outcome="deny",
                reason=str(error),
                details={"path": path_and_query, "method": method},
            )
            raise

    def record_request(
        self,
        *,
        path: str,
        method: str,
        identity: Identity | None,
        caller: Caller,
        decisions: list[DecisionRecord],
        failed: bool,
        network: NetworkCaller | None = None,
    ) -> None:
        """One audit entry for a request: each dataset and what was decided."""
        per_dataset: dict[str, str] = {}
        for record in decisions:
            per_dataset[record.dataset_id] = record.granularity or "deny"
        allowed = [name for name, outcome in per_dataset.items() if outcome != "deny"]
        if failed:
            outcome, reason = "error", "the request failed"
        elif allowed:
            outcome = "allow"
            reason = f"{len(allowed)} of {len(per_dataset)} datasets visible"
        else:
            outcome, reason = "deny", "no dataset visible to this caller"
        self.audit.record(
            actor=caller.subject or "anonymous",
            action=f"{method} {path}",
            outcome=outcome,
            reason=reason,
            details={
                "datasets": per_dataset,
                "registered": caller.registered,
                **rejected_visas(identity),
                **(
                    {"network": network.network, "network_jti": network.jti}
                    if network is not None
                    else {}
                ),
            },
        )

    def grant_visas(self, subject: str) -> list[str]:
        """Newly signed ControlledAccessGrants visas of ``subject``'s active grants."""
        now = dt.datetime.now(dt.UTC)
        with self.authoriser.session() as session:
            grants = applications.grants(session, subject=subject, now=now)
        return [
            issue_grant_visa(
                self.signing_keys,
                GrantVisa(
                    subject=grant.subject,
                    dataset=grant.dataset_id,
                    source=self.issuer,
                    asserted=grant.starts_at,
                    expires=grant.ends_at,
                ),
                issuer=self.issuer,
                jku=self.jku,
            )
            for grant in grants
            if grant.active(now)
        ]


def build_access_service(
    node: Node, *, public_url: str, dev_provider: DevIdentityProvider | None = None
) -> AccessService:
    """The access service of ``node`` from its settings.

    The node trusts its configured brokers and visa issuers, itself (visas signed
    with ``NODE_DIR/keys/visas``, keys published at
    ``<public_url>/.well-known/jwks.json``) and, when given, the development
    identity provider. Requests relayed by its ``trusted_networks`` are verified
    with the same key cache; their assertions must name the node's public URL or
    its node id in ``aud``; relay keys derive from ``NODE_DIR/keys/relay.key``
    and live ``network_relay_key_seconds``. Keys of the node and of the
    development provider are read locally, never fetched over HTTP from the node
    itself; other keys and userinfo documents are fetched asynchronously by the
    verifiers' ``prepare`` (one :class:`~genomenode.access.authorize.JsonFetcher`
    shared by all). With
    ``beacon_environment: prod``, tokens and visas of the development identity
    provider are refused whatever the node trusts.
    """
    config = node.config
    if config.require_network_assertion and not config.trusted_networks:
        raise ConfigError(
            "require_network_assertion: no trusted_networks are configured, so "
            "every Beacon query would be refused"
        )
    issuer = public_url.rstrip("/")
    jku = f"{issuer}/.well-known/jwks.json"
    signing_keys = node_visa_keys(config.node_dir)
    local: dict[str, Callable[[], Mapping[str, Any]]] = {jku: signing_keys.jwks}
    brokers = [TrustedIssuer(**item) for item in config.trusted_brokers]
    visa_issuers = [TrustedIssuer(**item) for item in config.trusted_visa_issuers]
    visa_issuers.append(TrustedIssuer(issuer, jku))
    if dev_provider is not None:
        brokers.append(dev_provider.trusted())
        visa_issuers.append(dev_provider.trusted())
        local[dev_provider.jku] = dev_provider.jwks

    def local_keys(url: str) -> Mapping[str, Any] | None:
        source = local.get(url)
        return source() if source is not None else None

    def local_userinfo(url: str, token: str) -> Mapping[str, Any] | None:
        if dev_provider is not None and url == dev_provider.userinfo_url:
            return dev_provider.userinfo(token)
        return None

    remote = JsonFetcher()
    keys = JwksCache(local_keys, remote=remote)
    refuse_development = config.beacon_environment == "prod"
    verifier = TokenVerifier(
        brokers,
        visa_issuers,
        keys,
        audience=config.passport_audience,
        userinfo_fetch=local_userinfo,
        remote=remote,
        refuse_development=refuse_development,
    )
    engine = node.engine

    def published_ids() -> frozenset[str]:
        with Session(engine) as session:
            return frozenset(
                session.scalars(
                    select(Dataset.id).where(Dataset.status == STATUS_PUBLISHED)
                ).all()
            )

    authoriser = Authoriser(
        engine=engine,
        verifier=verifier,
        node_issuer=issuer,
        registered_visa_types=frozenset(config.registered_visa_types),
        dataset_ids=published_ids,
        dataset_urls=f"{issuer}/api/datasets/",
    )
    return AccessService(
        authoriser=authoriser,
        audit=AuditWriter(engine),
        signing_keys=signing_keys,
        issuer=issuer,
        jku=jku,
        network_verifier=(
            NetworkVerifier(
                [TrustedIssuer(**item) for item in config.trusted_networks],
                keys,
                refuse_development=refuse_development,
                relay_secret=RelaySecret(config.node_dir / "keys" / "relay.key"),
                relay_key_seconds=config.network_relay_key_seconds,
            )
            if config.trusted_networks
            else None
        ),
        network_audiences=tuple(
            audience for audience in (issuer, config.node_id) if audience
        ),
        require_network_assertion=config.require_network_assertion,
    )
