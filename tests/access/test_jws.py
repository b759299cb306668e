"""One table of hostile tokens, run against every surface that verifies a token.

The surfaces: the passport verifier (``TokenVerifier.verify``), a visa inside a
passport (through the broker's userinfo, so that only the visa is hostile), the
network assertion verifier (``NetworkVerifier.verify``) and the development
identity provider's own check of its access tokens (``/userinfo``). Each hostile
token must end in ``None`` (only where the surface's contract says "not mine":
a passport or an assertion of an issuer the node does not trust) or in a
``TokenError`` that says why, never in another exception and never accepted; the
``prepare`` step of each surface must not raise on it either. A valid token of
each surface is accepted, so the harness can tell acceptance from refusal.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import hypothesis
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import strategies
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from genomenode.access import jws
from genomenode.access.devidp import DevIdentityProvider
from genomenode.access.network_trust import (
    ASSERTION_TYPE,
    NetworkSigner,
    NetworkVerifier,
    body_digest,
)
from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.errors import TokenError

BROKER = TrustedIssuer(
    "https://broker.example", "https://broker.example/jwks", "https://broker/userinfo"
)
VISAS = TrustedIssuer("https://rems.example", "https://rems.example/jwks")
NETWORK = TrustedIssuer("https://network.example", "https://network.example/jwks")
DEV_IDP = "https://node.example/dev-idp"
NODE_URL = "https://node.example"
PATH = "/api/g_variants"
BODY = b'{"query": {}}'
STRANGER = "https://stranger.example"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(document: object) -> bytes:
    return json.dumps(document).encode()


def _sign(algorithm: str, key: Any, signing_input: bytes) -> bytes:
    if algorithm == "RS256":
        return RSAAlgorithm(RSAAlgorithm.SHA256).sign(signing_input, key)
    return ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input, key)


def _public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        document = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        document = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**document, "kid": kid}


@dataclasses.dataclass
class Surface:
    """One place tokens are verified, with an issuer it trusts and that issuer's
    keys (kid → private key, all published in its JWKS)."""

    name: str
    issuer: str
    jku: str
    keys: dict[str, Any]
    ec_kid: str
    rsa_kid: str
    header: dict[str, Any]
    valid_claims: Callable[[], dict[str, Any]]
    verdict: Callable[[str], object]
    prepare: Callable[[str], Any] | None
    #: Keys nobody publishes ("rsa", "ec"), to sign under another key's kid.
    foreign_keys: dict[str, Any] = dataclasses.field(default_factory=dict)

    def claims(self, **changes: Any) -> dict[str, Any]:
        """Valid claims with ``changes`` (a value of None leaves the claim out)."""
        claims = {**self.valid_claims(), **changes}
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        payload: bytes | None = None,
        algorithm: str = "ES256",
        kid: object = "",
        key: Any = None,
        **header_changes: Any,
    ) -> str:
        """A token signed with the issuer's key of ``algorithm`` (or ``key``).

        ``kid`` "" names the key that signs; a header value of None leaves the
        field out.
        """
        if kid == "":
            kid = self.ec_kid if algorithm == "ES256" else self.rsa_kid
        header = {"alg": algorithm, "kid": kid, **self.header, **header_changes}
        header = {name: value for name, value in header.items() if value is not None}
        if payload is None:
            payload = _json(claims if claims is not None else self.claims())
        signing_input = f"{_b64(_json(header))}.{_b64(payload)}".encode()
        if key is None:
            key = self.keys[str(kid)]
        return f"{signing_input.decode()}.{_b64(_sign(algorithm, key, signing_input))}"

    def public_pem(self) -> bytes:
        return (
            self.keys[self.ec_kid]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
        )


@pytest.fixture(scope="module")
def issuer_keys() -> dict[str, Any]:
    """An RSA and an EC key per issuer (RSA keys are slow to make: once)."""
    return {
        "broker-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "broker-ec": ec.generate_private_key(ec.SECP256R1()),
        "visa-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "visa-ec": ec.generate_private_key(ec.SECP256R1()),
        "network-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "devidp-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "attacker-rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    }


def _now() -> int:
    return int(time.time())


def _jwks_fetch(published: dict[str, dict[str, Any]]) -> Callable[[str], Any]:
    def fetch(url: str) -> dict[str, Any]:
        return {"keys": [_public_jwk(key, kid) for kid, key in published[url].items()]}

    return fetch


def _passport_surface(keys: dict[str, Any], refuse_development: bool) -> Surface:
    broker_keys = {"b-rsa": keys["broker-rsa"], "b-ec": keys["broker-ec"]}
    verifier = TokenVerifier(
        [BROKER],
        [VISAS],
        JwksCache(_jwks_fetch({BROKER.jku: broker_keys})),
        audience=NODE_URL,
        refuse_development=refuse_development,
    )

    def claims() -> dict[str, Any]:
        now = _now()
        return {
            "iss": BROKER.issuer,
            "sub": "alice",
            "aud": NODE_URL,
            "iat": now - 10,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "ga4gh_passport_v1": [],
        }

    return Surface(
        name="passport",
        issuer=BROKER.issuer,
        jku=BROKER.jku,
        keys=broker_keys,
        ec_kid="b-ec",
        rsa_kid="b-rsa",
        header={"jku": BROKER.jku, "typ": "JWT"},
        valid_claims=claims,
        verdict=verifier.verify,
        prepare=verifier.prepare,
    )


def _visa_surface(keys: dict[str, Any], refuse_development: bool) -> Surface:
    """The hostile token is a visa from the broker's userinfo, for a valid
    access token of a trusted broker: only the visa can be refused."""
    broker_key = keys["broker-ec"]
    visa_keys = {"v-rsa": keys["visa-rsa"], "v-ec": keys["visa-ec"]}
    served: dict[str, str] = {}

    def userinfo(url: str, token: str) -> dict[str, Any]:
        return {"sub": "alice", "ga4gh_passport_v1": [served["visa"]]}

    verifier = TokenVerifier(
        [BROKER],
        [VISAS],
        JwksCache(_jwks_fetch({BROKER.jku: {"b": broker_key}, VISAS.jku: visa_keys})),
        userinfo_fetch=userinfo,
        refuse_development=refuse_development,
    )

    def access_token() -> str:
        now = _now()
        claims = {
            "iss": BROKER.issuer,
            "sub": "alice",
            "iat": now - 10,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, broker_key, algorithm="ES256", headers={"kid": "b"})

    def verdict(visa: str) -> object:
        served["visa"] = visa
        try:
            identity = verifier.verify(access_token())
        except TokenError as error:
            raise AssertionError(f"the passport itself was refused: {error}") from None
        assert identity is not None
        if identity.visas:
            return identity
        (reason,) = identity.rejected_visas
        raise TokenError(reason)

    def prepare(visa: str) -> Any:
        served["visa"] = visa
        return verifier.prepare(access_token())

    def claims() -> dict[str, Any]:
        now = _now()
        return {
            "iss": VISAS.issuer,
            "sub": "alice",
            "iat": now - 10,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "ga4gh_visa_v1": {
                "type": "ControlledAccessGrants",
                "value": "d1",
                "source": "https://rems.example/dac",
                "by": "dac",
                "asserted": now - 60,
            },
        }

    return Surface(
        name="visa",
        issuer=VISAS.issuer,
        jku=VISAS.jku,
        keys=visa_keys,
        ec_kid="v-ec",
        rsa_kid="v-rsa",
        header={"jku": VISAS.jku, "typ": "JWT"},
        valid_claims=claims,
        verdict=verdict,
        prepare=prepare,
    )


def _network_surface(
    keys: dict[str, Any], signer: NetworkSigner, refuse_development: bool
) -> Surface:
    kid, signing_key = signer.keys.active()
    network_keys = {kid: signing_key, "n-rsa": keys["network-rsa"]}
    verifier = NetworkVerifier(
        [NETWORK],
        JwksCache(_jwks_fetch({NETWORK.jku: network_keys})),
        refuse_development=refuse_development,
    )

    def verdict(token: str) -> object:
        return verifier.verify(
            token, audience=NODE_URL, method="POST", path_and_query=PATH, body=BODY
        )

    def claims() -> dict[str, Any]:
        now = _now()
        return {
            "iss": NETWORK.issuer,
            "aud": NODE_URL,
            "iat": now - 10,
            "exp": now + 50,
            "jti": uuid.uuid4().hex,
            "htm": "POST",
            "htu": PATH,
            "bdh": body_digest(BODY),
        }

    return Surface(
        name="network",
        issuer=NETWORK.issuer,
        jku=NETWORK.jku,
        keys=network_keys,
        ec_kid=kid,
        rsa_kid="n-rsa",
        header={"typ": ASSERTION_TYPE},
        valid_claims=claims,
        verdict=verdict,
        prepare=verifier.prepare,
    )


def _devidp_surface(
    keys: dict[str, Any], provider: DevIdentityProvider, monkeypatch
) -> Surface:
    kid, signing_key = provider._keys.active()
    # Its JWKS also publishes an RSA key, so that key confusion can be tried.
    own_jwks = provider.jwks
    rsa_jwk = _public_jwk(keys["devidp-rsa"], "d-rsa")
    monkeypatch.setattr(
        provider, "jwks", lambda: {"keys": [*own_jwks()["keys"], rsa_jwk]}
    )

    def claims() -> dict[str, Any]:
        now = _now()
        return {
            "iss": provider.issuer,
            "sub": "alice",
            "iat": now - 10,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "scope": "openid ga4gh_passport_v1",
            "genomenode_dev_visa_types": ["ResearcherStatus"],
            jws.DEVELOPMENT_CLAIM: True,
        }

    return Surface(
        name="devidp",
        issuer=provider.issuer,
        jku=provider.jku,
        keys={kid: signing_key, "d-rsa": keys["devidp-rsa"]},
        ec_kid=kid,
        rsa_kid="d-rsa",
        header={"jku": provider.jku, "typ": "JWT"},
        valid_claims=claims,
        verdict=provider.userinfo,
        prepare=None,
    )


SURFACES = ("passport", "visa", "network", "devidp")
#: The surfaces that check ``aud`` (visas and the provider's tokens have none).
WITH_AUDIENCE = frozenset({"passport", "network"})
#: The surfaces whose contract answers None for a token that is not theirs.
NOT_MINE_IS_NONE = frozenset({"passport", "network"})


@pytest.fixture(scope="module")
def signer(tmp_path_factory) -> NetworkSigner:
    return NetworkSigner(tmp_path_factory.mktemp("network") / "keys", NETWORK.issuer)


@pytest.fixture(scope="module")
def dev_directory(tmp_path_factory):
    return tmp_path_factory.mktemp("dev-idp")


@pytest.fixture
def make_surface(issuer_keys, signer, dev_directory, monkeypatch):
    def make(name: str, *, refuse_development: bool = False) -> Surface:
        if name == "passport":
            surface = _passport_surface(issuer_keys, refuse_development)
        elif name == "visa":
            surface = _visa_surface(issuer_keys, refuse_development)
        elif name == "network":
            surface = _network_surface(issuer_keys, signer, refuse_development)
        else:
            provider = DevIdentityProvider(dev_directory, DEV_IDP)
            surface = _devidp_surface(issuer_keys, provider, monkeypatch)
        surface.foreign_keys = {
            "rsa": issuer_keys["attacker-rsa"],
            "ec": ec.generate_private_key(ec.SECP256R1()),
        }
        return surface

    return make


def _tamper_payload(surface: Surface) -> str:
    header, _payload, signature = surface.token().split(".")
    forged = _b64(_json(surface.claims(sub="mallory")))
    return f"{header}.{forged}.{signature}"


def _tamper_signature(surface: Surface) -> str:
    header, payload, signature = surface.token().split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    return f"{header}.{payload}.{_b64(bytes(raw))}"


def _truncated_signature(surface: Surface) -> str:
    header, payload, signature = surface.token().split(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    return f"{header}.{payload}.{_b64(raw[:-1])}"


def _unsigned(surface: Surface) -> str:
    header = {"alg": "none", "kid": surface.ec_kid, **surface.header}
    return f"{_b64(_json(header))}.{_b64(_json(surface.claims()))}."


def _hmac_with_public_key(surface: Surface) -> str:
    """The classic key confusion: HS256 "signed" with the issuer's public key."""
    header = {"alg": "HS256", "kid": surface.ec_kid, **surface.header}
    signing_input = f"{_b64(_json(header))}.{_b64(_json(surface.claims()))}"
    mac = hmac.new(surface.public_pem(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64(mac.digest())}"


def _with_header_part(surface: Surface, header_part: str) -> str:
    _header, payload, signature = surface.token().split(".")
    return f"{header_part}.{payload}.{signature}"


def _with_raw_claims(surface: Surface, text: str) -> str:
    """Validly signed claims whose JSON text is ``text``, with ``{claims}``
    replaced by the valid claims' members (so other claims stay good)."""
    members = json.dumps(surface.claims())[1:-1]
    return surface.token(payload=text.replace("{claims}", members).encode())


@dataclasses.dataclass(frozen=True)
class Hostile:
    """A hostile token and how every surface must end on it.

    ``reason`` is what the TokenError must say. With ``not_mine``, the passport
    and network verifiers must answer None instead (the token does not show a
    trusted issuer); visas and the development provider have no "not mine" and
    must refuse it with ``reason``.
    """

    name: str
    make: Callable[[Surface], str]
    reason: str
    not_mine: bool = False
    surfaces: frozenset[str] = frozenset(SURFACES)


HOSTILE = [
    Hostile(
        "expired",
        lambda s: s.token(s.claims(iat=_now() - 7200, exp=_now() - 3600)),
        "has expired",
    ),
    Hostile(
        "expired-within-the-leeway-boundary",
        lambda s: s.token(s.claims(iat=_now() - 600, exp=_now() - 31)),
        "has expired",
    ),
    Hostile(
        "not-yet-valid-nbf",
        lambda s: s.token(s.claims(nbf=_now() + 3600)),
        "not valid yet",
    ),
    Hostile(
        "issued-in-the-future",
        lambda s: s.token(s.claims(iat=_now() + 3600, exp=_now() + 3650)),
        "not valid yet",
    ),
    Hostile("missing-exp", lambda s: s.token(s.claims(exp=None)), "lacks the exp"),
    Hostile("missing-iat", lambda s: s.token(s.claims(iat=None)), "lacks the iat"),
    Hostile(
        "wrong-iss",
        lambda s: s.token(s.claims(iss=STRANGER)),
        "not a trusted visa issuer|is from 'https://stranger",
        not_mine=True,
    ),
    Hostile(
        "iss-not-a-string",
        lambda s: s.token(s.claims(iss=[s.issuer])),
        "not a trusted visa issuer|is from \\[",
        not_mine=True,
    ),
    Hostile(
        "untrusted-jku",
        lambda s: s.token(jku="https://evil.example/jwks"),
        "names jku 'https://evil.example/jwks', not the key URL trusted",
    ),
    Hostile(
        "unknown-kid",
        lambda s: s.token(kid="made-up", key=s.keys[s.ec_kid]),
        "unknown key id",
    ),
    Hostile(
        "kid-not-a-string",
        lambda s: s.token(kid=7, key=s.keys[s.ec_kid]),
        "kid that is not a string",
    ),
    Hostile(
        "no-kid-with-several-keys",
        lambda s: s.token(kid=None, key=s.keys[s.ec_kid]),
        "has no kid|unknown key id None",
    ),
    Hostile("tampered-payload", _tamper_payload, "bad signature"),
    Hostile("tampered-signature", _tamper_signature, "bad signature"),
    Hostile("truncated-signature", _truncated_signature, "bad signature"),
    Hostile(
        "signature-not-base64url",
        lambda s: s.token().rsplit(".", 1)[0] + ".%%%",
        "signature is not base64url",
    ),
    Hostile("alg-none", _unsigned, "algorithm 'none'"),
    Hostile(
        "alg-missing",
        lambda s: _with_header_part(s, _b64(_json({"kid": s.ec_kid, **s.header}))),
        "algorithm None",
    ),
    Hostile("hs256-with-the-public-key", _hmac_with_public_key, "algorithm 'HS256'"),
    Hostile(
        "rs256-header-with-an-ec-key",
        lambda s: s.token(algorithm="RS256", kid=s.ec_kid, key=s.foreign_keys["rsa"]),
        "not a key for RS256",
    ),
    Hostile(
        "es256-header-with-an-rsa-key",
        lambda s: s.token(algorithm="ES256", kid=s.rsa_kid, key=s.foreign_keys["ec"]),
        "not a key for ES256",
    ),
    Hostile(
        "critical-header-extension",
        lambda s: s.token(crit=["exp"]),
        "critical header extensions",
    ),
    Hostile(
        "wrong-audience",
        lambda s: s.token(s.claims(aud="https://other-node.example")),
        "another audience",
        surfaces=WITH_AUDIENCE,
    ),
    Hostile(
        "audience-not-a-string",
        lambda s: s.token(s.claims(aud=5)),
        "another audience",
        surfaces=WITH_AUDIENCE,
    ),
    Hostile("empty", lambda s: "", "well-formed", not_mine=True),
    Hostile("not-three-parts", lambda s: "abc.def", "well-formed", not_mine=True),
    Hostile("four-parts", lambda s: s.token() + ".extra", "well-formed", not_mine=True),
    Hostile(
        "header-not-base64url",
        lambda s: _with_header_part(s, "!!not base64!!"),
        "well-formed",
        not_mine=True,
    ),
    Hostile(
        "header-not-json",
        lambda s: _with_header_part(s, _b64(b"not json")),
        "well-formed",
        not_mine=True,
    ),
    Hostile(
        "header-a-json-array",
        lambda s: _with_header_part(s, _b64(b'["alg", "ES256"]')),
        "well-formed",
        not_mine=True,
    ),
    Hostile(
        "header-nested-too-deep",
        lambda s: _with_header_part(s, _b64(b"[" * 30_000 + b"]" * 30_000)),
        "well-formed",
        not_mine=True,
    ),
    Hostile(
        "claims-not-base64url",
        lambda s: f"{s.token().split('.')[0]}.é%%.{s.token().split('.')[2]}",
        "well-formed",
        not_mine=True,
    ),
    Hostile(
        "claims-not-an-object",
        lambda s: s.token(payload=_json([s.claims()])),
        "well-formed",
        not_mine=True,
    ),
    Hostile(
        "claims-with-nan",
        lambda s: _with_raw_claims(s, '{{claims}, "nbf": NaN}'),
        "well-formed",
        not_mine=True,
    ),
    Hostile(
        "huge-token-of-1-mb",
        lambda s: s.token(s.claims(padding="x" * 1_000_000)),
        "too long",
    ),
    Hostile(
        "exp-a-string",
        lambda s: s.token(s.claims(exp=str(_now() + 600))),
        "exp that is not a time",
    ),
    Hostile(
        "exp-a-boolean", lambda s: s.token(s.claims(exp=True)), "exp that is not a time"
    ),
    Hostile(
        "exp-10-to-the-400",
        lambda s: s.token(s.claims(exp=10**400)),
        "exp that is not a time",
    ),
    Hostile(
        "exp-infinite",
        lambda s: _with_raw_claims(s, '{{claims}, "exp": 1e400}'),
        "exp that is not a time",
    ),
    Hostile(
        "exp-negative", lambda s: s.token(s.claims(exp=-1)), "exp that is not a time"
    ),
    Hostile("iat-a-boolean", lambda s: s.token(s.claims(iat=False)), "iat that is not"),
    Hostile(
        "nbf-a-string", lambda s: s.token(s.claims(nbf="yesterday")), "nbf that is not"
    ),
    Hostile(
        "nbf-10-to-the-400", lambda s: s.token(s.claims(nbf=10**400)), "nbf that is not"
    ),
    Hostile(
        "sub-not-a-string",
        lambda s: s.token(s.claims(sub=42)),
        "sub that is not a non-empty string",
    ),
]


@pytest.mark.parametrize("surface_name", SURFACES)
def test_a_valid_token_is_accepted_by_every_surface(make_surface, surface_name):
    surface = make_surface(surface_name)
    token = surface.token()
    if surface.prepare is not None:
        asyncio.run(surface.prepare(token))
    assert surface.verdict(token) is not None
    # Signed with the issuer's RSA key just as well.
    assert surface.verdict(surface.token(algorithm="RS256")) is not None


@pytest.mark.parametrize(
    ("surface_name", "hostile"),
    [
        pytest.param(name, hostile, id=f"{hostile.name}-{name}")
        for hostile in HOSTILE
        for name in SURFACES
        if name in hostile.surfaces
    ],
)
def test_a_hostile_token_ends_in_none_or_a_token_error(
    make_surface, surface_name, hostile
):
    surface = make_surface(surface_name)
    token = hostile.make(surface)
    if surface.prepare is not None:
        asyncio.run(surface.prepare(token))  # must not raise either
    if hostile.not_mine and surface_name in NOT_MINE_IS_NONE:
        assert surface.verdict(token) is None
        return
    with pytest.raises(TokenError, match=hostile.reason) as refused:
        surface.verdict(token)
    if len(token) > 40:
        assert token[-40:] not in str(refused.value)


@pytest.mark.parametrize("surface_name", ["passport", "visa", "network"])
def test_development_tokens_are_refused_in_prod(make_surface, surface_name):
    surface = make_surface(surface_name, refuse_development=True)
    assert surface.verdict(surface.token()) is not None
    marked = surface.token(surface.claims(**{jws.DEVELOPMENT_CLAIM: True}))
    with pytest.raises(TokenError, match="development identity provider"):
        surface.verdict(marked)
    # Outside prod the claim changes nothing.
    lenient = make_surface(surface_name)
    assert lenient.verdict(lenient.token(lenient.claims(genomenode_dev_idp=True)))


def test_a_development_passport_and_its_visas_carry_the_claim(dev_directory):
    provider = DevIdentityProvider(dev_directory, DEV_IDP)
    claims = jwt.decode(provider.passport("alice"), options={"verify_signature": False})
    assert claims[jws.DEVELOPMENT_CLAIM] is True
    for visa in claims["ga4gh_passport_v1"]:
        visa_claims = jwt.decode(visa, options={"verify_signature": False})
        assert visa_claims[jws.DEVELOPMENT_CLAIM] is True


# --- the routine itself, fuzzed ----------------------------------------------


def _no_keys(jku: str, kid: str | None) -> None:
    return None


_json_values = strategies.recursive(
    strategies.none()
    | strategies.booleans()
    | strategies.integers(min_value=-(10**30), max_value=10**30)
    | strategies.floats(allow_nan=False)
    | strategies.text(max_size=20),
    lambda children: (
        strategies.lists(children, max_size=4)
        | strategies.dictionaries(strategies.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_headers = strategies.fixed_dictionaries(
    {},
    optional={
        "alg": strategies.sampled_from(["ES256", "RS256", "none", "HS256", 5]),
        "kid": _json_values,
        "jku": _json_values,
        "typ": _json_values,
        "crit": _json_values,
    },
)
_claims = strategies.dictionaries(
    strategies.sampled_from(["iss", "sub", "exp", "nbf", "iat", "aud", "x"]),
    _json_values,
)


@hypothesis.settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(
    header=_headers | _json_values,
    claims=_claims | _json_values,
    signature=strategies.binary(max_size=80),
)
def test_any_token_ends_in_a_token_error(header, claims, signature):
    token = ".".join(_b64(_json(part)) for part in (header, claims))
    token += "." + _b64(signature)
    assert jws.peek(token) is None or isinstance(jws.peek(token), tuple)
    with pytest.raises(TokenError):
        jws.verify(
            token,
            issuer="https://broker.example",
            jku="https://broker.example/jwks",
            keys=_no_keys,
            now=time.time(),
            audience="node",
        )


@hypothesis.settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(text=strategies.text(max_size=200))
def test_any_text_ends_in_a_token_error(text):
    assert jws.peek(text) is None or isinstance(jws.peek(text), tuple)
    with pytest.raises(TokenError):
        jws.verify(
            text,
            issuer="https://broker.example",
            jku="https://broker.example/jwks",
            keys=_no_keys,
            now=time.time(),
        )


def test_sign_es256_is_a_jws_peers_verify():
    """What the node signs verifies with PyJWT, another implementation."""
    key = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": "https://node.test", "sub": "x", "exp": time.time() + 60}
    token = jws.sign_es256(claims, key, kid="k1", jku="https://node.test/jwks")
    assert jwt.get_unverified_header(token) == {
        "alg": "ES256",
        "kid": "k1",
        "jku": "https://node.test/jwks",
        "typ": "JWT",
    }
    decoded = jwt.decode(token, key.public_key(), algorithms=["ES256"])
    assert decoded == claims
    tampered = token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(tampered, key.public_key(), algorithms=["ES256"])
