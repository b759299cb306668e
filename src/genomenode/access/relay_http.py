"""``POST /access/relay-keys``: a relay key for the trusted network that asks.

A trusted network asks each of its nodes for a relay key
(:mod:`~genomenode.access.relay_keys`) and then MACs the assertions it sends that
node with it, instead of signing each one (``docs/network-trust.md``). The request
must carry a valid **signed** (ES256) assertion of a trusted network, bound to this
request as any assertion is (method, path, body, audience, one use); an assertion
MACed with a relay key cannot obtain another, so a leaked key dies with its
expiry. The body names the network's key-agreement key::

    {"agreement_kid": "<kid of a "use": "enc" key in the network's JWKS>"}

That key is taken from the network's trusted ``jku`` (the key cache the signing
keys come from), never from the request. The answer carries the key wrapped to it
(:func:`~genomenode.access.relay_keys.wrap_relay_key`)::

    {"kid", "expires_in", "alg", "agreement_kid", "epk", "iv", "ciphertext"}

Every issue and every refusal is audited (``access.relay_key``); the audit names
the network and the kid, never a key. 404 when the node issues no relay keys (no
``trusted_networks``, or ``network_relay_key_seconds`` is 0): a network treats it
as it treats an older node.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..errors import AuthenticationRequired, InputError, NotFoundError, TokenError
from ..web.blocking import run_blocking
from ..web.body import limits_of, parse_json, read_body
from ..web.responses import json_response
from .callers import received_path_and_query, required_access_service
from .network_trust import ASSERTION_HEADER, NetworkVerifier
from .relay_keys import wrap_relay_key
from .service import AccessService

__all__ = ["router"]

#: ``POST /relay-keys`` (mount with ``prefix="/access"``).
router = APIRouter(tags=["access"])

_ACTION = "access.relay_key"
_MAX_KID_LENGTH = 200
_ANSWER: dict[str, Any] = {
    "type": "object",
    "required": ["kid", "expires_in", "alg", "epk", "iv", "ciphertext"],
    "properties": {
        "kid": {"type": "string"},
        "expires_in": {"type": "integer"},
        "alg": {"type": "string"},
        "agreement_kid": {"type": "string"},
        "epk": {"type": "object"},
        "iv": {"type": "string"},
        "ciphertext": {"type": "string"},
    },
}


def _refused(
    request: Request,
    service: AccessService,
    reason: str,
    *,
    network: str | None = None,
) -> None:
    service.audit.record(
        actor=network or "unknown",
        action=_ACTION,
        outcome="deny",
        reason=reason,
        details={"network": network} if network else None,
    )
    request.state.audited = True


def _agreement_kid(raw: bytes, request: Request) -> str:
    document = parse_json(raw, limits_of(request)) if raw.strip() else None
    kid = document.get("agreement_kid") if isinstance(document, dict) else None
    if not isinstance(kid, str) or not kid or len(kid) > _MAX_KID_LENGTH:
        raise InputError(
            'the body must be {"agreement_kid": <the kid of the network\'s '
            'key-agreement key ("use": "enc") in its JWKS>}',
            field="agreement_kid",
        )
    return kid


@router.post(
    "/relay-keys",
    summary="A relay key for the trusted network that asks, wrapped to its key",
    responses={
        200: {
            "description": "The relay key, wrapped to the network's agreement key",
            "content": {"application/json": {"schema": _ANSWER}},
        }
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["agreement_kid"],
                        "properties": {"agreement_kid": {"type": "string"}},
                    }
                }
            },
        }
    },
)
async def relay_key(request: Request) -> JSONResponse:
    service = required_access_service(request)
    verifier = service.network_verifier
    if verifier is None or verifier.relay_key_seconds <= 0:
        _refused(request, service, "this node issues no relay keys")
        raise NotFoundError(
            "this node issues no relay keys (no trusted_networks, or "
            "network_relay_key_seconds is 0)"
        )
    assertion = request.headers.get(ASSERTION_HEADER)
    if assertion is None:
        _refused(request, service, "no network assertion")
        raise AuthenticationRequired(
            "a relay key is issued only to a trusted network, on a request it "
            f"signs ({ASSERTION_HEADER})"
        )
    raw = await read_body(request)
    try:
        agreement_kid = _agreement_kid(raw, request)
    except InputError as error:
        _refused(request, service, str(error))
        raise
    await verifier.prepare(assertion)
    await verifier.prepare_agreement(assertion, agreement_kid)
    path_and_query = received_path_and_query(request, service.issuer)
    answer = await run_blocking(
        request,
        _issue,
        request,
        service,
        verifier,
        assertion=assertion,
        path_and_query=path_and_query,
        body=raw,
        agreement_kid=agreement_kid,
    )
    return json_response(answer)


def _issue(
    request: Request,
    service: AccessService,
    verifier: NetworkVerifier,
    *,
    assertion: str,
    path_and_query: str,
    body: bytes,
    agreement_kid: str,
) -> dict[str, Any]:
    """Verify the signed assertion, then issue and wrap a key (audited)."""
    try:
        caller = verifier.verify(
            assertion,
            audience=service.network_audiences,
            method=request.method,
            path_and_query=path_and_query,
            body=body,
            accept_relay_keys=False,
        )
    except TokenError as error:
        _refused(request, service, str(error))
        raise
    if caller is None:
        _refused(request, service, "the assertion is not from a trusted network")
        raise AuthenticationRequired(
            "a relay key is issued only to a network this node trusts"
        )
    agreement = verifier.agreement_key(caller.network, agreement_kid)
    if agreement is None:
        reason = (
            f"agreement_kid {agreement_kid[:80]!r} is not a key-agreement key "
            f'("use": "enc", ECDH-ES, P-256) in the JWKS of {caller.network}'
        )
        _refused(request, service, reason, network=caller.network)
        raise InputError(reason, field="agreement_kid")
    assert verifier.relay_secret is not None  # relay_key_seconds > 0
    lifetime = verifier.relay_key_seconds
    kid, value = verifier.relay_secret.issue(caller.network, lifetime_seconds=lifetime)
    answer = wrap_relay_key(
        value,
        kid=kid,
        lifetime_seconds=lifetime,
        issuer=caller.network,
        audience=caller.audience or service.issuer,
        agreement=agreement,
        agreement_kid=agreement_kid,
    )
    service.audit.record(
        actor=caller.network,
        action=_ACTION,
        outcome="allow",
        reason=f"relay key issued, valid for {lifetime} s",
        details={
            "network": caller.network,
            "kid": kid,
            "network_jti": caller.jti,
        },
    )
    request.state.audited = True
    return answer
