"""Who is calling: from a request's bearer token to a :class:`Caller`, in one place.

Every service of the node (Beacon, downloads, analyses, the DAC API) gets its
caller from :meth:`Authoriser.caller_for`:

1. the bearer token is verified as a GA4GH passport by the configured
   :class:`~genomenode.access.tokens.TokenVerifier` (trusted brokers only; a
   token no trusted broker issued is refused, not treated as anonymous, so a
   misconfigured client learns why it sees nothing);
2. the caller is *registered* when a verified visa has one of the
   ``registered_visa_types``;
3. the caller's grants are read from the node's entitlements **on every request**
   (one indexed query), so a revocation or an expiry stops access at once, even
   for a node-signed ControlledAccessGrants visa that has not expired yet. Visas
   of this node are honoured only through those entitlements; grants from other
   trusted visa issuers count until their visa expires.

Tokens are never logged or audited; rejected visas are audited by their reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ..errors import TokenError
from . import applications
from .decision import ANONYMOUS, Caller
from .tokens import Identity, TokenVerifier

__all__ = ["Authoriser", "bearer_token", "fetch_json"]

_GRANT = "ControlledAccessGrants"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header; None without one.

    Raises
    ------
    TokenError
        The header is present but not a bearer token.
    """
    if authorization is None or not authorization.strip():
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("the Authorization header must be 'Bearer <passport>'")
    return token.strip()


def fetch_json(url: str, token: str | None = None, timeout: float = 5.0) -> Any:
    """GET a JSON document (a JWKS, an OIDC userinfo); errors name the URL only."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as error:
        raise TokenError(f"{url} cannot be read: {error}") from None


@dataclasses.dataclass(frozen=True)
class Authoriser:
    """Builds the caller of a request from its passport and the entitlements.

    Parameters
    ----------
    engine
        The node's metadata database (entitlements).
    verifier
        Verifies passports and visas from trusted issuers (the node included).
    node_issuer
        The ``iss`` of the node's own visas: they count only through an active
        entitlement.
    registered_visa_types
        Visa types that make a caller registered.
    dataset_ids
        Published dataset ids (a grant for anything else is ignored).
    dataset_urls
        Prefix of dataset URLs a visa ``value`` may use instead of the bare id
        (``<public_url>/api/datasets/``).
    """

    engine: Engine
    verifier: TokenVerifier
    node_issuer: str
    registered_visa_types: frozenset[str]
    dataset_ids: Callable[[], Collection[str]]
    dataset_urls: str = ""

    def session(self) -> Session:
        """A session on the node's database."""
        return Session(self.engine)

    def identify(self, authorization: str | None) -> Identity | None:
        """The verified identity of an ``Authorization`` header; None: anonymous.

        Raises
        ------
        TokenError
            A token was sent but is not a valid passport of a trusted broker.
        """
        token = bearer_token(authorization)
        if token is None:
            return None
        identity = self.verifier.verify(token)
        if identity is None:
            raise TokenError("the passport is not from a broker this node trusts")
        return identity

    def caller(
        self, identity: Identity | None, *, now: dt.datetime | None = None
    ) -> Caller:
        """The caller for ``identity`` (``ANONYMOUS`` for None), grants read now."""
        if identity is None:
            return ANONYMOUS
        registered = any(
            visa.type in self.registered_visa_types for visa in identity.visas
        )
        # A plain connection, not an ORM session: this runs on every request.
        with self.engine.connect() as connection:
            granted = set(
                applications.active_grants(connection, identity.subject, now=now)
            )
        foreign = [
            self._dataset_of(visa.value)
            for visa in identity.visas_of(_GRANT)
            # the node's own visas count only through an active entitlement (above)
            if visa.issuer != self.node_issuer
        ]
        if foreign:
            known = self.dataset_ids()
            granted.update(dataset_id for dataset_id in foreign if dataset_id in known)
        return Caller(
            subject=identity.subject,
            registered=registered,
            granted_datasets=frozenset(granted),
        )

    def caller_for(self, authorization: str | None) -> tuple[Identity | None, Caller]:
        """Identity and caller of an ``Authorization`` header."""
        identity = self.identify(authorization)
        return identity, self.caller(identity)

    def _dataset_of(self, value: str) -> str:
        if self.dataset_urls and value.startswith(self.dataset_urls):
            return value[len(self.dataset_urls) :].strip("/")
        return value


def rejected_visas(identity: Identity | None) -> Mapping[str, Any]:
    """What the audit log says of visas that did not count (reasons, no tokens)."""
    if identity is None or not identity.rejected_visas:
        return {}
    return {"rejected_visas": list(identity.rejected_visas)}
