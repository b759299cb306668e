"""The access API: the DAC workflow under ``/access``, the node's JWKS, and callers.

Routes (JSON in and out; every route but the catalogue and the JWKS needs a
passport):

=======================================  ==========================================
``GET  /access/catalogue``               datasets one can apply for, their DUO terms
``POST /access/applications``            apply (``submit: true`` to submit at once)
``GET  /access/applications``            mine, and those of datasets I am DAC for
``GET  /access/applications/{id}``       one, with the DUO recommendation
``PUT  /access/applications/{id}``       edit a draft or returned application
``POST /access/applications/{id}/{act}`` ``submit`` (applicant); ``approve``
                                         (``ends_at``), ``reject``, ``return``,
                                         ``revoke`` (DAC members)
``GET  /access/grants``                  my grants
``GET  /access/permissions/{user}``      REMS-compatible: ``{"ga4gh_passport_v1":
                                         [visa, ...]}`` of the user's active grants
``GET  /.well-known/jwks.json``          the node's visa signing keys
=======================================  ==========================================

:func:`caller_of` is how every service of the node learns who is asking; it
verifies the passport once per request. Each request that reached an access
decision is audited once (:meth:`AccessService.record_request`), through the
batched :class:`~genomenode.access.audit.AuditWriter`. A Beacon request relayed by
a trusted network carries a ``GA4GH-Network-Assertion``, verified by
:func:`network_of` before the route runs and named in the request's audit entry;
it never adds rights (see ``docs/network-trust.md``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import (
    AuthenticationRequired,
    ConfigError,
    InputError,
    PermissionDenied,
    TokenError,
)
from ..node import Node
from ..store.models import STATUS_PUBLISHED, Dataset
from ..web import json_response, read_body, read_json_object, run_blocking
from . import workflow
from .audit import AuditWriter
from .authorize import Authoriser, JsonFetcher, rejected_visas
from .decision import (
    ANONYMOUS,
    Caller,
    DecisionRecord,
    start_collecting,
    stop_collecting,
)
from .devidp import DevIdentityProvider
from .network_trust import ASSERTION_HEADER, NetworkCaller, NetworkVerifier
from .tokens import Identity, JwksCache, TokenVerifier, TrustedIssuer
from .visas import GrantVisa, SigningKeys, issue_grant_visa

__all__ = [
    "AccessService",
    "access_router",
    "audited",
    "build_access_service",
    "caller_of",
    "identity_of",
    "jwks_router",
    "network_of",
    "prepared",
]


@dataclasses.dataclass
class AccessService:
    """What the access routes and :func:`caller_of` share (one per process)."""

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
            grants = workflow.grants(session, subject=subject, now=now)
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


def _service(request: Request) -> AccessService | None:
    service: AccessService | None = getattr(request.app.state, "access", None)
    return service


def caller_of(request: Request) -> Caller:
    """Who is asking, verified once per request (anonymous without a passport).

    It reads no network: the keys and userinfo a passport needs were fetched by
    the route's async dependency (:func:`prepared`, or :func:`audited`); a key
    missing then makes the passport fail with "keys unavailable".

    Raises
    ------
    TokenError
        A token was sent that does not verify (HTTP 401).
    """
    cached: Caller | None = getattr(request.state, "caller", None)
    if cached is not None:
        return cached
    service = _service(request)
    if service is None:
        identity, caller = None, ANONYMOUS
    else:
        identity, caller = service.authenticate(request.headers.get("authorization"))
    request.state.identity = identity
    request.state.caller = caller
    return caller


def identity_of(request: Request) -> Identity:
    """The verified identity of a request that needs one.

    Raises
    ------
    AuthenticationRequired
        No passport was sent.
    """
    caller_of(request)
    identity: Identity | None = request.state.identity
    if identity is None:
        raise AuthenticationRequired("this needs a passport: Authorization: Bearer ...")
    return identity


async def network_of(request: Request) -> NetworkCaller | None:
    """The trusted network that relayed a request, verified once per request.

    None without an assertion, without trusted networks, or for an assertion no
    trusted network signed: the request is then a direct one.

    Raises
    ------
    TokenError
        The assertion names a trusted network but does not verify (HTTP 401).
    """
    if hasattr(request.state, "network"):
        cached: NetworkCaller | None = request.state.network
        return cached
    service = _service(request)
    assertion = request.headers.get(ASSERTION_HEADER)
    network = None
    if service is not None and assertion is not None:
        if service.network_verifier is not None:
            await service.network_verifier.prepare(assertion)
        # The body is read (and kept by Starlette) only when an assertion binds it.
        network = service.verify_network(
            assertion,
            method=request.method,
            path_and_query=_received_path_and_query(request, service.issuer),
            body=await read_body(request),
        )
    request.state.network = network
    return network


def _received_path_and_query(request: Request, public_url: str) -> str:
    """The path and query of a request as addressed to the node's public URL.

    A proxy that strips the public URL's path prefix hands the app the rest; the
    network signed the whole path it sent to.
    """
    prefix = urllib.parse.urlsplit(public_url).path.rstrip("/")
    path = request.url.path
    if prefix and not path.startswith(prefix + "/"):
        path = prefix + path
    query = request.url.query
    return f"{path}?{query}" if query else path


async def prepared(request: Request) -> None:
    """Router dependency: fetch what the request's passport needs before the
    handler runs (keys, userinfo; asynchronously, see
    :meth:`~genomenode.access.authorize.Authoriser.prepare`), so that
    :func:`caller_of` never waits on the network. Never raises.
    """
    service = _service(request)
    if service is not None:
        await service.authoriser.prepare(request.headers.get("authorization"))


async def audited(request: Request) -> AsyncIterator[None]:
    """Router dependency: verify a relaying network's assertion, fetch what the
    passport needs (:func:`prepared`), then audit the request's access decisions
    once it is answered.

    Raises
    ------
    TokenError
        A network assertion does not verify (HTTP 401).
    AuthenticationRequired
        The node requires a trusted network's assertion and the request has none.
    """
    network = await network_of(request)
    service = _service(request)
    if service is not None and service.require_network_assertion and network is None:
        service.audit.record(
            actor="unknown",
            action=f"{request.method} {request.url.path}",
            outcome="deny",
            reason="direct query: this node answers only through a trusted network",
        )
        raise AuthenticationRequired(
            "this node answers Beacon queries only when a trusted network relays "
            f"them ({ASSERTION_HEADER})"
        )
    await prepared(request)
    decisions = start_collecting()
    failed = False
    try:
        yield
    except Exception:
        failed = True
        raise
    finally:
        stop_collecting()
        service = _service(request)
        caller: Caller | None = getattr(request.state, "caller", None)
        if service is not None and caller is not None:
            service.record_request(
                path=request.url.path,
                method=request.method,
                identity=getattr(request.state, "identity", None),
                caller=caller,
                decisions=decisions,
                failed=failed,
                network=network,
            )


def _text(body: Mapping[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and not isinstance(value, str):
        raise InputError(f"{name} must be a string", field=name)
    return value


def _members(body: Mapping[str, Any]) -> tuple[str, ...] | None:
    value = body.get("members")
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise InputError("members must be a list of user ids", field="members")
    return tuple(value)


def _ends_at(body: Mapping[str, Any]) -> dt.datetime:
    value = body.get("ends_at")
    if not isinstance(value, str):
        raise InputError(
            "ends_at (ISO 8601 date or date-time) is required to approve",
            field="ends_at",
        )
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            moment = dt.datetime.combine(day, dt.time(), dt.UTC)
            moment += dt.timedelta(days=1)  # the whole day named
        else:
            moment = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise InputError(
            f"ends_at {value[:40]!r} is not an ISO 8601 date before 9999-12-31",
            field="ends_at",
        ) from None
    if moment.tzinfo is None:
        raise InputError("ends_at needs a time zone (e.g. Z)", field="ends_at")
    if moment.year > _LAST_GRANT_YEAR:
        raise InputError(
            f"ends_at must be before {_LAST_GRANT_YEAR + 1}", field="ends_at"
        )
    return moment


#: Grants end before this year ends; later dates overflow date arithmetic.
_LAST_GRANT_YEAR = 9000
#: Application ids are 64-bit database keys.
_APPLICATION_ID = Path(ge=1, le=2**63 - 1, description="application id")


def access_router() -> APIRouter:
    """The ``/access`` routes (mount with ``prefix="/access"``).

    Each handler reads its body (with the node's limits) on the event loop and
    does its database work in the thread pool (:func:`genomenode.web.run_blocking`).
    """
    # DAC actions audit themselves (in their own transaction); no request entry.
    router = APIRouter(tags=["access"], dependencies=[Depends(prepared)])

    def service_of(request: Request) -> AccessService:
        service = _service(request)
        if service is None:
            raise PermissionDenied("access control is not configured on this node")
        return service

    async def catalogue(request: Request) -> JSONResponse:
        service = service_of(request)

        def items() -> list[dict[str, Any]]:
            with service.authoriser.session() as session:
                found = workflow.catalogue_items(session)
            return [_public_item(item.to_json()) for item in found]

        return json_response({"items": await run_blocking(request, items)})

    async def create(request: Request) -> JSONResponse:
        service = service_of(request)
        identity = await run_blocking(request, identity_of, request)
        body = await read_json_object(request)
        dataset_id = _text(body, "dataset")
        if not dataset_id:
            raise InputError("dataset (the dataset id) is required", field="dataset")
        purpose_document = body.get("purpose")
        if not isinstance(purpose_document, dict):
            raise InputError(
                "purpose must be an object with a DUO term", field="purpose"
            )

        def apply() -> dict[str, Any]:
            application = workflow.create_application(
                service.authoriser.engine,
                dataset_id=dataset_id,
                applicant=identity.subject,
                project_title=_text(body, "project_title", "") or "",
                purpose=workflow.purpose_from_json(purpose_document),
                purpose_text=_text(body, "purpose_text", "") or "",
                members=_members(body) or (),
                submit=bool(body.get("submit", False)),
            )
            return application.to_json()

        return json_response(await run_blocking(request, apply), 201)

    async def listing(request: Request) -> JSONResponse:
        service = service_of(request)

        def applications() -> list[dict[str, Any]]:
            identity = identity_of(request)
            workflow.expire_due(service.authoriser.engine)
            found = workflow.list_applications(
                service.authoriser.engine,
                viewer=identity.subject,
                dataset_id=request.query_params.get("dataset"),
                state=request.query_params.get("state"),
            )
            return [item.to_json() for item in found]

        return json_response(
            {"applications": await run_blocking(request, applications)}
        )

    async def show(
        request: Request, application_id: int = _APPLICATION_ID
    ) -> JSONResponse:
        service = service_of(request)

        def one() -> dict[str, Any]:
            identity = identity_of(request)
            workflow.expire_due(service.authoriser.engine)
            application = workflow.get_application(
                service.authoriser.engine, application_id, viewer=identity.subject
            )
            return application.to_json()

        return json_response(await run_blocking(request, one))

    async def edit(
        request: Request, application_id: int = _APPLICATION_ID
    ) -> JSONResponse:
        service = service_of(request)
        identity = await run_blocking(request, identity_of, request)
        body = await read_json_object(request)
        purpose_document = body.get("purpose")

        def change() -> dict[str, Any]:
            application = workflow.edit_application(
                service.authoriser.engine,
                application_id,
                actor=identity.subject,
                project_title=_text(body, "project_title"),
                purpose=(
                    workflow.purpose_from_json(purpose_document)
                    if isinstance(purpose_document, dict)
                    else None
                ),
                purpose_text=_text(body, "purpose_text"),
                members=_members(body),
            )
            return application.to_json()

        return json_response(await run_blocking(request, change))

    actions: Mapping[str, Callable[..., workflow.Application]] = {
        "submit": workflow.submit,
        "approve": workflow.approve,
        "reject": workflow.reject,
        "return": workflow.return_for_changes,
        "revoke": workflow.revoke,
    }

    async def act(
        request: Request, action: str, application_id: int = _APPLICATION_ID
    ) -> JSONResponse:
        service = service_of(request)
        identity = await run_blocking(request, identity_of, request)
        function = actions.get(action)
        if function is None:
            raise InputError(
                f"unknown action {action[:40]!r} (one of {', '.join(actions)})",
                field="action",
            )
        body = await read_json_object(request)

        def perform() -> dict[str, Any]:
            keywords: dict[str, Any] = {"actor": identity.subject}
            try:
                if action != "submit":
                    keywords["comment"] = _text(body, "comment")
                if action == "approve":
                    keywords["ends_at"] = _ends_at(body)
                    keywords["override_reason"] = _text(body, "override_reason")
            except InputError as error:
                # A refused DAC step is an access decision too: audit it.
                service.audit.record(
                    actor=identity.subject,
                    action=f"access.{action}",
                    outcome="deny",
                    reason=str(error),
                    details={"application": application_id},
                )
                request.state.audited = True
                raise
            application = function(
                service.authoriser.engine, application_id, **keywords
            )
            return application.to_json()

        return json_response(await run_blocking(request, perform))

    async def my_grants(request: Request) -> JSONResponse:
        service = service_of(request)

        def found() -> list[dict[str, Any]]:
            identity = identity_of(request)
            with service.authoriser.session() as session:
                grants = workflow.grants(
                    session,
                    subject=identity.subject,
                    include_inactive=request.query_params.get("all") == "true",
                )
            return [grant.to_json() for grant in grants]

        return json_response({"grants": await run_blocking(request, found)})

    async def permissions(request: Request, user: str) -> JSONResponse:
        service = service_of(request)

        def visas() -> list[str]:
            identity = identity_of(request)
            if identity.subject != user:
                service.audit.record(
                    actor=identity.subject,
                    action="access.permissions",
                    outcome="deny",
                    reason="permissions of another user",
                    details={"user": user[:200]},
                )
                request.state.audited = True
                raise PermissionDenied(
                    "only the user themselves may read their permissions"
                )
            signed = service.grant_visas(user)
            service.audit.record(
                actor=identity.subject,
                action="access.permissions",
                outcome="allow",
                reason=f"{len(signed)} ControlledAccessGrants visas issued",
            )
            return signed

        return json_response({"ga4gh_passport_v1": await run_blocking(request, visas)})

    router.add_api_route("/catalogue", catalogue, methods=["GET"], summary="Catalogue")
    router.add_api_route(
        "/applications", create, methods=["POST"], summary="Apply for a dataset"
    )
    router.add_api_route(
        "/applications", listing, methods=["GET"], summary="Applications I may see"
    )
    router.add_api_route(
        "/applications/{application_id}",
        show,
        methods=["GET"],
        summary="One application",
    )
    router.add_api_route(
        "/applications/{application_id}",
        edit,
        methods=["PUT"],
        summary="Edit a draft or returned application",
    )
    router.add_api_route(
        "/applications/{application_id}/{action}",
        act,
        methods=["POST"],
        summary="submit, approve, reject, return or revoke",
    )
    router.add_api_route("/grants", my_grants, methods=["GET"], summary="My grants")
    router.add_api_route(
        "/permissions/{user}",
        permissions,
        methods=["GET"],
        summary="REMS-compatible: the user's grants as signed visas",
    )
    return router


def _public_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A catalogue item without the DAC members' user ids."""
    public = {key: value for key, value in item.items() if key != "dac_members"}
    members = item.get("dac_members")
    if isinstance(members, list):
        public["num_dac_members"] = len(members)
    return public


def jwks_router() -> APIRouter:
    """``/.well-known/jwks.json``: the public keys of the node's visas."""
    router = APIRouter(tags=["access"])

    async def jwks(request: Request) -> JSONResponse:
        service = _service(request)
        if service is None:
            return json_response({"keys": []})
        return json_response(service.signing_keys.jwks())

    router.add_api_route(
        "/.well-known/jwks.json", jwks, methods=["GET"], summary="Visa signing keys"
    )
    return router


def build_access_service(
    node: Node, *, public_url: str, dev_provider: DevIdentityProvider | None = None
) -> AccessService:
    """The access service of ``node`` from its settings.

    The node trusts its configured brokers and visa issuers, itself (visas signed
    with ``NODE_DIR/keys/visas``, keys published at
    ``<public_url>/.well-known/jwks.json``) and, when given, the development
    identity provider. Requests relayed by its ``trusted_networks`` are verified
    with the same key cache; their assertions must name the node's public URL or
    its node id in ``aud``. Keys of the node and of the development provider are read
    locally, never fetched over HTTP from the node itself; other keys and userinfo
    documents are fetched asynchronously by the verifiers' ``prepare`` (one
    :class:`~genomenode.access.authorize.JsonFetcher` shared by all). With
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
    signing_keys = SigningKeys(config.node_dir / "keys" / "visas")
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
            )
            if config.trusted_networks
            else None
        ),
        network_audiences=tuple(
            audience for audience in (issuer, config.node_id) if audience
        ),
        require_network_assertion=config.require_network_assertion,
    )
