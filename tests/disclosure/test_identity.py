"""Whose budget: passport subjects, client addresses by the trusted-proxy rule, and
the caller a trusted network vouches for."""

from __future__ import annotations

import pytest

from genomenode.disclosure.identity import client_address, identity_key


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", None, (), "203.0.113.9"),
        # An untrusted peer's X-Forwarded-For is ignored (anyone can write it).
        ("203.0.113.9", "198.51.100.1", (), "203.0.113.9"),
        ("10.0.0.2", "198.51.100.1", ("10.0.0.0/8",), "198.51.100.1"),
        # The right-most address not a trusted proxy; the client's own claims
        # further left prove nothing.
        (
            "10.0.0.2",
            "1.1.1.1, 198.51.100.1, 10.0.0.3",
            ("10.0.0.0/8",),
            "198.51.100.1",
        ),
        ("10.0.0.2", "10.0.0.5", ("10.0.0.0/8",), "10.0.0.2"),
        ("10.0.0.2", "garbage", ("10.0.0.0/8",), "unknown"),
        (None, None, (), "unknown"),
    ],
)
def test_client_address(peer, forwarded, trusted, expected):
    assert client_address(peer, forwarded, trusted) == expected


def test_identity_keys():
    assert (
        identity_key(subject="alice", issuer="https://idp", client="1.2.3.4")
        == "sub:https://idp|alice"
    )
    assert identity_key(subject=None, issuer=None, client="1.2.3.4") == "ip:1.2.3.4"
    relayed = identity_key(
        subject=None,
        issuer=None,
        client="10.9.9.9",
        network="https://net",
        relayed_client="ip:1.2.3.4",
    )
    # Through the network an anonymous caller keeps the budget of a direct query.
    assert relayed == "ip:1.2.3.4"
    assert (
        identity_key(
            subject=None, issuer=None, client="10.9.9.9", network="https://net"
        )
        == "network:https://net"
    )
    # A network cannot pick a passport subject's budget.
    assert (
        identity_key(
            subject=None,
            issuer=None,
            client="x",
            network="https://net",
            relayed_client="sub:idp|alice",
        )
        == "network:https://net"
    )
    assert len(identity_key(subject="a" * 2000, issuer="i", client="x")) == 500
