"""The fetcher of other servers' JSON (keys, userinfo): asynchronous, bounded in
time and size, one fetch per URL in flight, failed URLs not asked again for a while.

In-process, over ``httpx2.MockTransport``; the real network, with a server that
never answers, is in ``test_http.py``.
"""

from __future__ import annotations

import asyncio
import time

import httpx2
import pytest

from genomenode.access.authorize import Authoriser, JsonFetcher

URL = "https://broker.example/jwks"
USERINFO = "https://broker.example/userinfo"


class Server:
    """A mock server: counts requests, answers with ``respond(request)``."""

    def __init__(self, respond) -> None:
        self.respond = respond
        self.requests: list[httpx2.Request] = []

    async def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.respond(request)
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer


def _fetcher(server: Server, clock=None, **options) -> JsonFetcher:
    return JsonFetcher(
        transport=httpx2.MockTransport(server),
        clock=clock or time.monotonic,
        **options,
    )


def test_a_document_is_fetched_without_a_token_unless_one_is_given():
    server = Server(lambda request: httpx2.Response(200, json={"keys": []}))
    fetcher = _fetcher(server)
    assert asyncio.run(fetcher.get(URL)) == {"keys": []}
    assert "authorization" not in server.requests[0].headers
    assert asyncio.run(fetcher.get(USERINFO, bearer="abc")) == {"keys": []}
    assert server.requests[1].headers["authorization"] == "Bearer abc"
    assert fetcher.num_requests == 2


def test_concurrent_requests_for_one_url_share_one_fetch():
    async def slow(request):
        await asyncio.sleep(0.05)
        return httpx2.Response(200, json={"keys": [1]})

    server = Server(slow)
    fetcher = _fetcher(server)

    async def many():
        return await asyncio.gather(*(fetcher.get(URL) for _ in range(20)))

    answers = asyncio.run(many())
    assert answers == [{"keys": [1]}] * 20
    assert len(server.requests) == 1
    # Per token for userinfo: two tokens, two requests.

    async def two_tokens():
        return await asyncio.gather(
            fetcher.get(USERINFO, bearer="a"),
            fetcher.get(USERINFO, bearer="a"),
            fetcher.get(USERINFO, bearer="b"),
        )

    asyncio.run(two_tokens())
    assert len(server.requests) == 3


def test_a_failed_url_is_not_asked_again_for_a_while():
    clock = [100.0]

    def refuse(request):
        raise httpx2.ConnectError("connection refused", request=request)

    server = Server(refuse)
    fetcher = _fetcher(server, clock=lambda: clock[0], retry_after_seconds=10)
    assert asyncio.run(fetcher.get(URL)) is None
    assert asyncio.run(fetcher.get(URL)) is None
    assert asyncio.run(fetcher.get(URL, bearer="x")) is None
    assert len(server.requests) == 1
    clock[0] += 10.5
    server.respond = lambda request: httpx2.Response(200, json={"keys": []})
    assert asyncio.run(fetcher.get(URL)) == {"keys": []}
    assert len(server.requests) == 2


def test_a_slow_server_costs_the_timeout_and_nothing_more():
    async def never(request):
        await asyncio.sleep(30)
        return httpx2.Response(200, json={})

    server = Server(never)
    fetcher = _fetcher(server, timeout_seconds=0.2)
    started = time.monotonic()
    assert asyncio.run(fetcher.get(URL)) is None
    assert time.monotonic() - started < 2.0
    started = time.monotonic()
    assert asyncio.run(fetcher.get(URL)) is None  # remembered: no wait at all
    assert time.monotonic() - started < 0.05
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("response", "remembered"),
    [
        (httpx2.Response(200, content=b"x" * 2_000_000), True),
        (httpx2.Response(200, content=b"not json"), True),
        (httpx2.Response(200, content=b'{"exp": NaN}'), True),
        (httpx2.Response(200, content=b"[" * 50_000 + b"]" * 50_000), True),
        (httpx2.Response(302, headers={"Location": "https://evil.example/"}), True),
        (httpx2.Response(503, json={}), True),
        (httpx2.Response(401, json={"error": "invalid_token"}), False),
    ],
    ids=["too-large", "not-json", "nan", "too-deep", "redirect", "503", "401"],
)
def test_bad_answers_are_none(response, remembered):
    server = Server(lambda request: response)
    fetcher = _fetcher(server)
    assert asyncio.run(fetcher.get(USERINFO, bearer="token")) is None
    assert asyncio.run(fetcher.get(USERINFO, bearer="other")) is None
    # A 401 for one token says nothing of the server: the next token is asked.
    assert len(server.requests) == (1 if remembered else 2)


def test_the_authoriser_prepares_nothing_for_a_malformed_header():
    class Verifier:
        def __init__(self) -> None:
            self.prepared: list[str] = []

        async def prepare(self, token: str) -> None:
            self.prepared.append(token)

    verifier = Verifier()
    authoriser = Authoriser(
        engine=None,
        verifier=verifier,
        node_issuer="https://node.example",
        registered_visa_types=frozenset(),
        dataset_ids=frozenset,
    )
    for header in (None, "", "Basic abc", "Bearer"):
        asyncio.run(authoriser.prepare(header))
    asyncio.run(authoriser.prepare("Bearer  tok "))
    assert verifier.prepared == ["tok"]
