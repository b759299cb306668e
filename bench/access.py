"""Access benchmark: what passports and authorisation add to a request.

1. **Token verification** on a warm JWKS cache: a GA4GH passport carrying three
   visas (ResearcherStatus, AcceptedTermsAndPolicies, a node ControlledAccessGrants),
   all ES256, verified by :class:`genomenode.access.tokens.TokenVerifier`:
   - *first sight*: a new token each time (four signatures and the claim checks);
   - *again*: the same token again within its lifetime (the verified-passport cache);
   next to the peer: PyJWT's bare ``jwt.decode`` of the same four JWTs with the key
   in hand (the least any verifier must do).
2. **Added latency on a Beacon count query**: the same single-variant count query
   over the real app in-process (FastAPI TestClient), the dataset configured so that
   every kind of caller gets counts, once without a token and once with a passport
   (token verified, entitlements read from the database, the request's audit entry
   queued). The difference of the medians is what authorisation adds; target < 1 ms.
   Also the cost of queueing one audit entry.

Usage: python bench/access.py [--samples 500] [--requests 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import random
import statistics
import sys
import tempfile
import time

import jwt
from fastapi.testclient import TestClient

from genomenode.access.audit import AuditWriter
from genomenode.access.devidp import DevIdentityProvider
from genomenode.access.tokens import JwksCache, TokenVerifier, TrustedIssuer
from genomenode.access.visas import GrantVisa, SigningKeys, issue_grant_visa
from genomenode.app import create_app
from genomenode.ingest import ingest
from genomenode.simulate import simulate_cohort
from genomenode.store.node import init_node

BASE = "http://bench"


def _median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def _p99_us(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.99) - 1] * 1e6


def bench_tokens(directory: pathlib.Path, repeats: int) -> dict[str, float]:
    provider = DevIdentityProvider(directory / "idp", issuer=f"{BASE}/dev-idp")
    node_keys = SigningKeys(directory / "visas")
    node = TrustedIssuer(BASE, f"{BASE}/.well-known/jwks.json")
    node_keys.active()  # creates the first key, so that the JWKS below holds it
    documents = {provider.jku: provider.jwks(), node.jku: node_keys.jwks()}
    now = dt.datetime.now(dt.UTC)

    def passport() -> str:
        grant = issue_grant_visa(
            node_keys,
            GrantVisa(
                "bench@demo", "bench-dataset", BASE, now, now + dt.timedelta(days=1)
            ),
            issuer=node.issuer,
            jku=node.jku,
        )
        return provider.passport("bench@demo", extra_visas=[grant])

    verifier = TokenVerifier(
        [provider.trusted()],
        [provider.trusted(), node],
        JwksCache(lambda url: documents[url]),
    )
    tokens = [passport() for _ in range(repeats)]
    verifier.verify(passport())  # warm the JWKS cache
    first: list[float] = []
    for token in tokens:
        start = time.perf_counter()
        identity = verifier.verify(token)
        first.append(time.perf_counter() - start)
        assert identity is not None and len(identity.visas) == 3, identity
    again: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        verifier.verify(tokens[0])
        again.append(time.perf_counter() - start)
    # Peer: bare PyJWT decodes of the same four JWTs, keys already in hand.
    keys = {}
    for document in documents.values():
        for key in jwt.PyJWKSet.from_dict(document).keys:
            keys[key.key_id] = key.key
    peer: list[float] = []
    for token in tokens:
        start = time.perf_counter()
        claims = jwt.decode(
            token,
            keys[jwt.get_unverified_header(token)["kid"]],
            algorithms=["ES256"],
            options={"verify_aud": False},
        )
        for visa in claims["ga4gh_passport_v1"]:
            jwt.decode(
                visa,
                keys[jwt.get_unverified_header(visa)["kid"]],
                algorithms=["ES256"],
                options={"verify_aud": False},
            )
        peer.append(time.perf_counter() - start)
    return {
        "first_us": _median_us(first),
        "first_p99_us": _p99_us(first),
        "again_us": _median_us(again),
        "again_p99_us": _p99_us(again),
        "peer_us": _median_us(peer),
    }


def bench_beacon(
    directory: pathlib.Path, samples: int, requests: int
) -> dict[str, float]:
    os.environ.setdefault("GENOMENODE_WORKER_PROCESSES", "0")
    cohort = simulate_cohort(
        directory / "cohort",
        samples=samples,
        seed=11,
        length=1_000_000,
        country="FI",
        security_level="PUBLIC",
        dataset_id="bench-access",
    )
    import yaml

    document = yaml.safe_load(cohort.dataset_yaml.read_text())
    document["beacon"] = {
        "anonymous": "count",
        "registered": "count",
        "granted": "count",
    }
    cohort.dataset_yaml.write_text(yaml.safe_dump(document, sort_keys=False))
    node = init_node(directory / "node", node_id="bench", country="FI")
    ingest(node, cohort.dataset_yaml)
    import pysam

    with pysam.VariantFile(str(cohort.vcf_path)) as vcf:
        records = [record for _, record in zip(range(2000), vcf, strict=False)]
    random.seed(5)
    chosen = random.sample(records, 50)
    queries = [
        {
            "referenceName": record.chrom,
            "start": str(record.pos - 1),
            "referenceBases": record.ref,
            "alternateBases": record.alts[0],
            "requestedGranularity": "count",
        }
        for record in chosen
    ]
    app = create_app(node, base_url=BASE, dev_identity_provider=True)
    with TestClient(app, base_url=BASE) as client:
        token = client.post("/dev-idp/token", json={"subject": "bench@demo"}).json()[
            "access_token"
        ]
        with_passport = {"Authorization": f"Bearer {token}"}
        timings: dict[str, list[float]] = {"anonymous": [], "passport": []}
        for number in range(requests + 100):
            query = queries[number % len(queries)]
            # Interleaved, so that drift and caches treat both alike.
            for kind, headers in (("anonymous", {}), ("passport", with_passport)):
                start = time.perf_counter()
                response = client.get("/api/g_variants", params=query, headers=headers)
                elapsed = time.perf_counter() - start
                assert response.status_code == 200, response.text
                if number >= 100:  # warm-up
                    timings[kind].append(elapsed)
        app.state.access.audit.flush()
    writer = AuditWriter(node.engine)
    queued: list[float] = []
    for _ in range(requests):
        start = time.perf_counter()
        writer.record(
            actor="bench@demo",
            action="GET /api/g_variants",
            outcome="allow",
            reason="1 of 1 datasets visible",
            details={"datasets": {"bench-access": "count"}, "registered": True},
        )
        queued.append(time.perf_counter() - start)
    writer.close()
    node.close()
    anonymous = statistics.median(timings["anonymous"])
    passport_ = statistics.median(timings["passport"])
    return {
        "anonymous_ms": anonymous * 1e3,
        "passport_ms": passport_ * 1e3,
        "added_us": (passport_ - anonymous) * 1e6,
        "anonymous_p99_ms": _p99_us(timings["anonymous"]) / 1e3,
        "passport_p99_ms": _p99_us(timings["passport"]) / 1e3,
        "audit_record_us": _median_us(queued),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--requests", type=int, default=2000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genomenode-bench-access-") as temporary:
        directory = pathlib.Path(temporary)
        tokens = bench_tokens(directory, arguments.requests)
        beacon = bench_beacon(directory, arguments.samples, arguments.requests)
    print("## Token verification (passport + 3 visas, ES256, warm JWKS)")
    print("| case | p50 µs | p99 µs | PyJWT bare decodes p50 µs | ours ÷ PyJWT |")
    print("|---|---|---|---|---|")
    print(
        f"| first sight | {tokens['first_us']:.0f} | {tokens['first_p99_us']:.0f} | "
        f"{tokens['peer_us']:.0f} | {tokens['first_us'] / tokens['peer_us']:.2f}× |"
    )
    print(
        f"| same token again | {tokens['again_us']:.1f} | "
        f"{tokens['again_p99_us']:.1f} | "
        f"{tokens['peer_us']:.0f} | {tokens['again_us'] / tokens['peer_us']:.3f}× |"
    )
    print()
    print(
        f"## Beacon count query, in-process app ({arguments.requests} requests each, "
        "interleaved)"
    )
    print("| caller | p50 ms | p99 ms |")
    print("|---|---|---|")
    print(
        f"| anonymous | {beacon['anonymous_ms']:.3f} | "
        f"{beacon['anonymous_p99_ms']:.3f} |"
    )
    print(
        f"| passport | {beacon['passport_ms']:.3f} | {beacon['passport_p99_ms']:.3f} |"
    )
    print(
        f"\nadded by authorisation (p50 difference): {beacon['added_us']:.0f} µs "
        f"(target < 1000 µs): {'met' if beacon['added_us'] < 1000 else 'NOT met'}"
    )
    print(f"queueing one audit entry: {beacon['audit_record_us']:.1f} µs (p50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
