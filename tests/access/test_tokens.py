"""Passport and visa verification: every way a token must be refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.errors import TokenError

BROKER = TrustedIssuer("https://broker.example", "https://broker.example/jwks")
VISAS = TrustedIssuer("https://rems.example", "https://rems.example/jwks")
STRANGER = TrustedIssuer("https://stranger.example", "https://stranger.example/jwks")


def _rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(private_key, kid: str) -> dict:
    algorithm = (
        RSAAlgorithm if isinstance(private_key, rsa.RSAPrivateKey) else ECAlgorithm
    )
    document = json.loads(algorithm.to_jwk(private_key.public_key()))
    document["kid"] = kid
    return document


class Keys:
    """Issuers' key pairs and the JWKS documents a fetch would return."""

    def __init__(self) -> None:
        self.private = {
            BROKER.jku: {"b1": _rsa()},
            VISAS.jku: {"v1": ec.generate_private_key(ec.SECP256R1())},
            STRANGER.jku: {"s1": _rsa()},
        }
        self.fetches: list[str] = []

    def fetch(self, jku: str) -> dict:
        self.fetches.append(jku)
        return {"keys": [_jwk(key, kid) for kid, key in self.private[jku].items()]}


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def verifier(keys) -> TokenVerifier:
    return TokenVerifier([BROKER], [VISAS], JwksCache(keys.fetch))


def _sign(
    keys: Keys, trusted: TrustedIssuer, key_id: str, claims: dict, **header
) -> str:
    """Sign with the issuer's key ``key_id``; ``header`` overrides (even ``kid``)."""
    key = keys.private[trusted.jku][key_id]
    algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    headers = {"kid": key_id, "jku": trusted.jku, **header}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _visa(keys, *, issuer=VISAS, kid="v1", subject="alice", **changes) -> str:
    now = int(time.time())
    body = {
        "type": "ControlledAccessGrants",
        "value": "https://node.example/datasets/d1",
        "source": "https://node.example/dac",
        "by": "dac",
        "asserted": now - 60,
    }
    body.update(changes.pop("body", {}))
    claims = {
        "iss": issuer.issuer,
        "sub": subject,
        "iat": now - 10,
        "exp": now + 3600,
        "ga4gh_visa_v1": body,
        **changes,
    }
    return _sign(keys, issuer, kid, claims)


def _passport(keys, visas=(), *, kid="b1", **changes) -> str:
    now = int(time.time())
    claims = {
        "iss": BROKER.issuer,
        "sub": "alice",
        "iat": now - 10,
        "exp": now + 3600,
        "ga4gh_passport_v1": list(visas),
        **changes,
    }
    return _sign(keys, BROKER, kid, claims)


def test_a_valid_passport_with_a_valid_visa(verifier, keys):
    identity = verifier.verify(_passport(keys, [_visa(keys)]))
    assert identity is not None
    assert identity.subject == "alice"
    (visa,) = identity.visas_of("ControlledAccessGrants")
    assert visa.value == "https://node.example/datasets/d1"
    assert visa.issuer == VISAS.issuer
    assert identity.rejected_visas == ()


def test_a_passport_from_an_untrusted_broker_is_not_mine(verifier, keys):
    now = int(time.time())
    token = _sign(
        keys,
        STRANGER,
        "s1",
        {"iss": STRANGER.issuer, "sub": "x", "iat": now, "exp": now + 60},
    )
    assert verifier.verify(token) is None
    assert verifier.verify("not a token at all") is None


def _tamper_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    return f"{header}.{payload}.{flipped}"


def _unsigned(claims: dict) -> str:
    return f"{_part({'alg': 'none', 'typ': 'JWT'})}.{_part(claims)}."


def _part(document: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


def _hmac_with_public_key(keys: Keys, claims: dict) -> str:
    """The classic key confusion: HS256 "signed" with the broker's public key."""
    public = keys.private[BROKER.jku]["b1"].public_key()
    secret = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{_part({'alg': 'HS256', 'typ': 'JWT', 'kid': 'b1'})}.{_part(claims)}"
    )
    digest = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def _claims(**changes) -> dict:
    now = int(time.time())
    return {
        "iss": BROKER.issuer,
        "sub": "alice",
        "iat": now,
        "exp": now + 3600,
        **changes,
    }


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: _passport(k, exp=int(time.time()) - 3600), "expired"),
        (lambda k: _passport(k, nbf=int(time.time()) + 3600), "not valid yet"),
        (
            lambda k: _sign(
                k, BROKER, "b1", _claims(), jku="https://evil.example/jwks"
            ),
            "jku",
        ),
        (lambda k: _sign(k, BROKER, "b1", _claims(), kid="nope"), "unknown key id"),
        (lambda k: _tamper_payload(_passport(k)), "signature"),
        (lambda k: _tamper_signature(_passport(k)), "signature"),
        (lambda k: _unsigned(_claims()), "algorithm 'none'"),
        (lambda k: _hmac_with_public_key(k, _claims()), "algorithm 'HS256'"),
        (
            lambda k: _sign(
                k, BROKER, "b1", {k2: v for k2, v in _claims().items() if k2 != "exp"}
            ),
            "exp",
        ),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "untrusted-jku",
        "unknown-kid",
        "tampered-payload",
        "tampered-signature",
        "alg-none",
        "hs256-with-public-key",
        "no-exp",
    ],
)
def test_rejections(verifier, keys, make, reason):
    token = make(keys)
    with pytest.raises(TokenError, match=reason):
        verifier.verify(token)


def test_a_key_for_another_algorithm_is_refused(keys):
    # The broker's JWKS URL serves an EC key under the kid an RS256 token names.
    keys.private[BROKER.jku] = {"b1": ec.generate_private_key(ec.SECP256R1())}
    rsa_key = _rsa()
    token = jwt.encode(
        _claims(), rsa_key, algorithm="RS256", headers={"kid": "b1", "jku": BROKER.jku}
    )
    verifier = TokenVerifier([BROKER], [VISAS], JwksCache(keys.fetch))
    with pytest.raises(TokenError, match="not a key for RS256"):
        verifier.verify(token)


def test_audience_is_checked_when_configured(keys):
    verifier = TokenVerifier([BROKER], [VISAS], JwksCache(keys.fetch), audience="node")
    with pytest.raises(TokenError, match="aud"):
        verifier.verify(_passport(keys))
    assert verifier.verify(_passport(keys, aud="node")) is not None


@pytest.mark.parametrize(
    ("visa", "reason"),
    [
        (lambda k: _visa(k, issuer=STRANGER, kid="s1"), "not a trusted visa issuer"),
        (lambda k: _visa(k, exp=int(time.time()) - 3600), "expired"),
        (lambda k: _visa(k, subject="bob"), "another subject"),
        (
            lambda k: _visa(k, body={"conditions": [[{"type": "AffiliationAndRole"}]]}),
            "refused: it has conditions",
        ),
        (lambda k: _tamper_signature(_visa(k)), "signature"),
        (lambda k: _visa(k), None),
    ],
    ids=[
        "untrusted-issuer",
        "expired",
        "other-subject",
        "conditions",
        "tampered",
        "valid",
    ],
)
def test_bad_visas_are_left_out_with_their_reason(verifier, keys, visa, reason):
    identity = verifier.verify(_passport(keys, [visa(keys), _visa(keys)]))
    assert identity is not None
    if reason is None:
        assert len(identity.visas) == 2
        return
    assert len(identity.visas) == 1  # the good one stays
    (rejected,) = identity.rejected_visas
    assert reason in rejected


def test_key_rotation_refreshes_once_then_caches(keys):
    clock = [1000.0]
    cache = JwksCache(keys.fetch, clock=lambda: clock[0])
    verifier = TokenVerifier([BROKER], [VISAS], cache)
    assert verifier.verify(_passport(keys)) is not None
    assert verifier.verify(_passport(keys)) is not None
    assert keys.fetches.count(BROKER.jku) == 1
    # The broker rotates: a new kid appears; the first token with it triggers one fetch.
    keys.private[BROKER.jku]["b2"] = _rsa()
    clock[0] += 60
    assert verifier.verify(_passport(keys, kid="b2")) is not None
    assert keys.fetches.count(BROKER.jku) == 2
    # Made-up kids do not make the node fetch again within min_refresh_seconds.
    for _ in range(5):
        with pytest.raises(TokenError, match="unknown key id"):
            verifier.verify(_sign(keys, BROKER, "b1", _claims(), kid="made-up"))
    assert keys.fetches.count(BROKER.jku) == 2


# OIDC userinfo: brokers whose access tokens carry no visas (LS-AAI).

USERINFO_URL = "https://broker.example/userinfo"
BROKER_WITH_USERINFO = TrustedIssuer(BROKER.issuer, BROKER.jku, USERINFO_URL)


def _access_token(keys, **changes) -> str:
    """A broker token without the ga4gh_passport_v1 claim."""
    return _sign(keys, BROKER, "b1", _claims(**changes))


class Userinfo:
    """A broker's userinfo endpoint: the document it answers, and who asked."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.calls: list[str] = []

    def fetch(self, url: str, token: str) -> dict:
        assert url == USERINFO_URL
        self.calls.append(hashlib.sha256(token.encode()).hexdigest())
        return self.document


def _userinfo_verifier(keys, userinfo, **options) -> TokenVerifier:
    return TokenVerifier(
        [BROKER_WITH_USERINFO],
        [VISAS],
        JwksCache(keys.fetch),
        userinfo_fetch=userinfo.fetch,
        **options,
    )


def test_visas_come_from_userinfo_when_the_token_has_none(keys):
    userinfo = Userinfo({"sub": "alice", "ga4gh_passport_v1": [_visa(keys)]})
    verifier = _userinfo_verifier(keys, userinfo)
    identity = verifier.verify(_access_token(keys))
    assert identity is not None
    assert identity.subject == "alice"
    (visa,) = identity.visas_of("ControlledAccessGrants")
    assert visa.issuer == VISAS.issuer
    assert identity.rejected_visas == ()
    assert len(userinfo.calls) == 1


def test_userinfo_is_not_asked_when_the_token_carries_visas(keys):
    userinfo = Userinfo({"sub": "alice", "ga4gh_passport_v1": []})
    verifier = _userinfo_verifier(keys, userinfo)
    identity = verifier.verify(_passport(keys, [_visa(keys)]))
    assert identity is not None
    assert len(identity.visas) == 1
    assert userinfo.calls == []


def test_without_a_userinfo_url_or_fetch_a_token_without_visas_has_none(keys):
    userinfo = Userinfo({"sub": "alice", "ga4gh_passport_v1": [_visa(keys)]})
    no_url = TokenVerifier(
        [BROKER], [VISAS], JwksCache(keys.fetch), userinfo_fetch=userinfo.fetch
    )
    no_fetch = TokenVerifier([BROKER_WITH_USERINFO], [VISAS], JwksCache(keys.fetch))
    for verifier in (no_url, no_fetch):
        identity = verifier.verify(_access_token(keys))
        assert identity is not None
        assert identity.visas == ()
    assert userinfo.calls == []


def test_userinfo_for_another_subject_is_refused(keys):
    userinfo = Userinfo({"sub": "mallory", "ga4gh_passport_v1": [_visa(keys)]})
    verifier = _userinfo_verifier(keys, userinfo)
    with pytest.raises(TokenError, match="another subject"):
        verifier.verify(_access_token(keys))


def test_unreadable_userinfo_is_a_token_error_without_the_token(keys):
    token = _access_token(keys)

    def failing_fetch(url: str, bearer: str) -> dict:
        raise ConnectionError(f"connection refused while sending {bearer}")

    verifier = TokenVerifier(
        [BROKER_WITH_USERINFO],
        [VISAS],
        JwksCache(keys.fetch),
        userinfo_fetch=failing_fetch,
    )
    with pytest.raises(TokenError, match="cannot be read") as info:
        verifier.verify(token)
    assert str(info.value).startswith("userinfo of https://broker.example ")
    assert token not in str(info.value)


def test_userinfo_visas_from_an_untrusted_issuer_are_rejected(keys):
    document = {
        "sub": "alice",
        "ga4gh_passport_v1": [_visa(keys, issuer=STRANGER, kid="s1"), _visa(keys)],
    }
    verifier = _userinfo_verifier(keys, Userinfo(document))
    identity = verifier.verify(_access_token(keys))
    assert identity is not None
    assert len(identity.visas) == 1
    (rejected,) = identity.rejected_visas
    assert "not a trusted visa issuer" in rejected


def test_userinfo_is_fetched_once_per_token(keys):
    clock = [time.time()]
    visa = _visa(keys, exp=int(clock[0]) + 600)
    userinfo = Userinfo({"sub": "alice", "ga4gh_passport_v1": [visa]})
    verifier = _userinfo_verifier(keys, userinfo, clock=lambda: clock[0])
    token = _access_token(keys)
    assert verifier.verify(token) is not None
    assert verifier.verify(token) is not None
    assert len(userinfo.calls) == 1
    # The visa expires: the passport is verified again, its visas still come
    # from the cached userinfo answer.
    clock[0] += 1200
    identity = verifier.verify(token)
    assert identity is not None
    assert identity.visas == ()
    assert "expired" in identity.rejected_visas[0]
    assert len(userinfo.calls) == 1


# The verified-passport cache.


class CountingJwksCache(JwksCache):
    """A JwksCache that counts key look-ups (one per signature verified)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lookups = 0

    def key(self, jku: str, kid: str | None) -> jwt.PyJWK:
        self.lookups += 1
        return super().key(jku, kid)


@pytest.fixture
def clock() -> list[float]:
    return [time.time()]


@pytest.fixture
def counting(keys) -> CountingJwksCache:
    return CountingJwksCache(keys.fetch)


@pytest.fixture
def cached_verifier(counting, clock) -> TokenVerifier:
    return TokenVerifier([BROKER], [VISAS], counting, clock=lambda: clock[0])


def test_a_passport_verified_again_comes_from_the_cache(
    cached_verifier, counting, keys
):
    token = _passport(keys, [_visa(keys)])
    first = cached_verifier.verify(token)
    assert counting.lookups == 2  # passport and visa
    second = cached_verifier.verify(token)
    assert second == first
    assert counting.lookups == 2


def test_the_cache_is_keyed_by_the_hash_of_the_token(cached_verifier, keys):
    token = _passport(keys)
    cached_verifier.verify(token)
    entries = cached_verifier._passports._entries
    assert list(entries) == [hashlib.sha256(token.encode()).digest()]


def test_a_rotated_key_does_not_revoke_a_cached_passport(keys, clock):
    cache = JwksCache(keys.fetch, ttl_seconds=0.0, min_refresh_seconds=0.0)
    verifier = TokenVerifier([BROKER], [VISAS], cache, clock=lambda: clock[0])
    token = _passport(keys)
    assert verifier.verify(token) is not None
    keys.private[BROKER.jku] = {"b2": _rsa()}  # b1 is gone from the JWKS
    assert verifier.verify(token) is not None
    assert verifier.verify(_passport(keys, kid="b2")) is not None


def test_an_expired_passport_is_never_served_from_the_cache(
    cached_verifier, counting, keys, clock
):
    token = _passport(keys, exp=int(clock[0]) + 600)
    assert cached_verifier.verify(token) is not None
    clock[0] += 600 + 31  # past exp and the 30 s leeway
    with pytest.raises(TokenError, match="has expired"):
        cached_verifier.verify(token)
    with pytest.raises(TokenError, match="has expired"):
        cached_verifier.verify(token)  # and not cached as good again


def test_within_the_leeway_a_cached_passport_is_still_served(
    cached_verifier, counting, keys, clock
):
    token = _passport(keys, exp=int(clock[0]) + 600)
    assert cached_verifier.verify(token) is not None
    clock[0] = int(clock[0]) + 600 + 29
    assert cached_verifier.verify(token) is not None
    assert counting.lookups == 1


def test_a_visa_expiring_first_ends_the_cache_entry(
    cached_verifier, counting, keys, clock
):
    visa = _visa(keys, exp=int(clock[0]) + 60)
    token = _passport(keys, [visa], exp=int(clock[0]) + 3600)
    identity = cached_verifier.verify(token)
    assert identity is not None
    assert len(identity.visas) == 1
    clock[0] += 120
    identity = cached_verifier.verify(token)
    assert identity is not None
    assert identity.visas == ()
    (rejected,) = identity.rejected_visas
    assert "has expired" in rejected
    assert counting.lookups == 4  # verified again, both signatures
    assert cached_verifier.verify(token) == identity
    assert counting.lookups == 4  # and cached again, without the visa


def test_the_cache_is_bounded_and_drops_the_oldest(keys, counting, clock):
    verifier = TokenVerifier(
        [BROKER], [VISAS], counting, clock=lambda: clock[0], max_cached_tokens=2
    )
    tokens = [_passport(keys, jti=str(number)) for number in range(3)]
    for token in tokens:
        verifier.verify(token)
    assert counting.lookups == 3
    verifier.verify(tokens[2])
    verifier.verify(tokens[1])
    assert counting.lookups == 3
    verifier.verify(tokens[0])  # dropped: verified again
    assert counting.lookups == 4


def test_a_rejected_token_is_not_cached(cached_verifier, counting, keys):
    token = _tamper_signature(_passport(keys))
    for _ in range(2):
        with pytest.raises(TokenError, match="signature"):
            cached_verifier.verify(token)
    assert counting.lookups == 2


# Keys and userinfo of other servers: fetched by prepare, never by verify.


class Remote:
    """A remote JSON source (RemoteJson): documents by URL, and who asked."""

    def __init__(self, documents: dict) -> None:
        self.documents = documents
        self.calls: list[tuple[str, str | None]] = []

    async def get(self, url: str, *, bearer: str | None = None):
        self.calls.append((url, bearer))
        answer = self.documents.get(url)
        return answer(bearer) if callable(answer) else answer


def _remote_keys(keys: Keys) -> dict:
    return {jku: keys.fetch(jku) for jku in (BROKER.jku, VISAS.jku)}


def test_verify_reads_no_network_and_prepare_fetches_the_keys(keys):
    remote = Remote(_remote_keys(keys))
    verifier = TokenVerifier([BROKER], [VISAS], JwksCache(remote=remote))
    token = _passport(keys, [_visa(keys)])
    with pytest.raises(
        TokenError, match=r"keys of https://broker\.example are unavailable"
    ):
        verifier.verify(token)
    assert remote.calls == []
    asyncio.run(verifier.prepare(token))
    assert sorted(remote.calls) == [(BROKER.jku, None), (VISAS.jku, None)]
    identity = verifier.verify(token)
    assert identity is not None
    assert len(identity.visas) == 1
    # Another token of the same issuers: the keys are at hand, nothing is fetched.
    asyncio.run(verifier.prepare(_passport(keys, [_visa(keys)], jti="2")))
    assert len(remote.calls) == 2


def test_prepare_fetches_nothing_for_an_untrusted_issuer_or_garbage(keys):
    remote = Remote(_remote_keys(keys))
    verifier = TokenVerifier([BROKER], [VISAS], JwksCache(remote=remote))
    now = int(time.time())
    stranger = _sign(
        keys, STRANGER, "s1", {"iss": STRANGER.issuer, "sub": "x", "exp": now + 60}
    )
    untrusted_visa = _visa(keys, issuer=STRANGER, kid="s1")
    for token in (stranger, "garbage", "a.b.c", "x" * 200_000):
        asyncio.run(verifier.prepare(token))
    assert remote.calls == []
    asyncio.run(verifier.prepare(_passport(keys, [untrusted_visa])))
    assert remote.calls == [(BROKER.jku, None)]


def test_a_visa_of_an_unavailable_issuer_is_rejected_with_its_reason(keys):
    documents = _remote_keys(keys)
    documents[VISAS.jku] = None  # the visa issuer is down
    verifier = TokenVerifier([BROKER], [VISAS], JwksCache(remote=Remote(documents)))
    token = _passport(keys, [_visa(keys)])
    asyncio.run(verifier.prepare(token))
    identity = verifier.verify(token)
    assert identity is not None
    assert identity.visas == ()
    (reason,) = identity.rejected_visas
    assert "keys of https://rems.example are unavailable" in reason


def test_unknown_kids_refresh_a_jwks_at_most_once_per_interval(keys):
    clock = [1000.0]
    remote = Remote(_remote_keys(keys))
    cache = JwksCache(remote=remote, clock=lambda: clock[0])
    verifier = TokenVerifier([BROKER], [VISAS], cache)
    asyncio.run(verifier.prepare(_passport(keys)))
    assert len(remote.calls) == 1
    forged = [
        _sign(keys, BROKER, "b1", _claims(), kid=f"made-up-{n}") for n in range(5)
    ]
    clock[0] += 5
    for token in forged:
        asyncio.run(verifier.prepare(token))
        with pytest.raises(TokenError, match="unknown key id"):
            verifier.verify(token)
    assert len(remote.calls) == 1  # within min_refresh_seconds: no refresh
    clock[0] += 6
    for token in forged:
        asyncio.run(verifier.prepare(token))
    assert len(remote.calls) == 2  # one refresh for all of them
    # The broker rotates: a new kid is found by the next refresh.
    keys.private[BROKER.jku]["b2"] = _rsa()
    remote.documents[BROKER.jku] = keys.fetch(BROKER.jku)
    rotated = _passport(keys, kid="b2")
    asyncio.run(verifier.prepare(rotated))
    assert len(remote.calls) == 2
    clock[0] += 11
    asyncio.run(verifier.prepare(rotated))
    assert len(remote.calls) == 3
    assert verifier.verify(rotated) is not None


def test_a_failed_key_fetch_is_not_repeated_within_the_interval(keys):
    clock = [1000.0]
    remote = Remote({})  # every fetch fails
    verifier = TokenVerifier(
        [BROKER], [VISAS], JwksCache(remote=remote, clock=lambda: clock[0])
    )
    token = _passport(keys)
    for _ in range(3):
        asyncio.run(verifier.prepare(token))
        with pytest.raises(TokenError, match="unavailable"):
            verifier.verify(token)
    assert len(remote.calls) == 1
    clock[0] += 11
    remote.documents.update(_remote_keys(keys))
    asyncio.run(verifier.prepare(token))
    assert len(remote.calls) == 2
    assert verifier.verify(token) is not None


def test_keys_that_cannot_be_refreshed_are_kept(keys):
    clock = [1000.0]
    remote = Remote(_remote_keys(keys))
    cache = JwksCache(remote=remote, ttl_seconds=60, clock=lambda: clock[0])
    verifier = TokenVerifier([BROKER], [VISAS], cache)
    asyncio.run(verifier.prepare(_passport(keys)))
    remote.documents.clear()  # the broker goes down
    clock[0] += 120  # past the ttl: a refresh is tried, and fails
    token = _passport(keys, jti="later")
    asyncio.run(verifier.prepare(token))
    assert len(remote.calls) == 2
    assert verifier.verify(token) is not None


def test_userinfo_is_fetched_by_prepare_for_a_token_that_verifies(keys):
    forged_calls = []

    def userinfo(bearer):
        forged_calls.append(bearer)
        return {"sub": "alice", "ga4gh_passport_v1": [_visa(keys)]}

    documents = {**_remote_keys(keys), USERINFO_URL: userinfo}
    remote = Remote(documents)
    verifier = TokenVerifier(
        [BROKER_WITH_USERINFO], [VISAS], JwksCache(remote=remote), remote=remote
    )
    token = _access_token(keys)
    # A forged token is never sent to the broker.
    asyncio.run(verifier.prepare(_tamper_signature(token)))
    assert forged_calls == []
    with pytest.raises(TokenError, match="signature"):
        verifier.verify(_tamper_signature(token))
    # Unprepared, the userinfo is unavailable: verify does not fetch it.
    with pytest.raises(
        TokenError, match=r"userinfo of https://broker\.example is unavailable"
    ):
        verifier.verify(token)
    asyncio.run(verifier.prepare(token))
    assert forged_calls == [token]
    assert (USERINFO_URL, token) in remote.calls
    assert (VISAS.jku, None) in remote.calls  # the visa's keys, too
    identity = verifier.verify(token)
    assert identity is not None
    assert len(identity.visas_of("ControlledAccessGrants")) == 1
    # Verified and cached: prepare fetches nothing more.
    calls = len(remote.calls)
    asyncio.run(verifier.prepare(token))
    assert len(remote.calls) == calls


def test_unavailable_userinfo_is_a_token_error_naming_the_broker(keys):
    remote = Remote(_remote_keys(keys))  # no document at the userinfo URL
    verifier = TokenVerifier(
        [BROKER_WITH_USERINFO], [VISAS], JwksCache(remote=remote), remote=remote
    )
    token = _access_token(keys)
    asyncio.run(verifier.prepare(token))
    with pytest.raises(
        TokenError, match=r"userinfo of https://broker\.example"
    ) as info:
        verifier.verify(token)
    assert token not in str(info.value)
