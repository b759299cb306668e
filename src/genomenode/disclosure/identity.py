"""Whose budget an answer is charged to: one key per caller, from plain values.

- a caller with a verified passport: ``sub:<issuer>|<sub>``;
- an anonymous caller: ``ip:<address>`` of the client. The client is the TCP peer,
  unless the peer is a trusted reverse proxy (``disclosure_trusted_proxies``): then
  the right-most ``X-Forwarded-For`` address that is not a trusted proxy (the
  addresses left of it were written by the client and prove nothing);
- an anonymous caller relayed by a trusted network: the ``clt`` the network put in
  its signed assertion (``ip:<address>`` as the network saw it), so that the
  budget follows the person, not the network; without one, ``network:<issuer>``
  (the whole network shares one budget).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

__all__ = ["client_address", "identity_key"]

_MAX_KEY = 500


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[str]
) -> str:
    """The client's address by the trusted-proxy rule (the module docstring);
    ``"unknown"`` without a peer."""
    if not peer:
        return "unknown"
    networks = [ipaddress.ip_network(item, strict=False) for item in trusted_proxies]

    def trusted(text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in net for net in networks)

    if not networks or not trusted(peer) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            address = _address(hop)
            return str(address) if address is not None else "unknown"
    return peer


def identity_key(
    *,
    subject: str | None,
    issuer: str | None,
    client: str,
    network: str | None = None,
    relayed_client: str | None = None,
) -> str:
    """The budget key of a caller (see the module docstring).

    Parameters
    ----------
    subject, issuer
        The verified passport's ``sub`` and ``iss``; None when anonymous.
    client
        The client address (:func:`client_address`).
    network
        The issuer of a verified network assertion that relayed the request.
    relayed_client
        That assertion's ``clt`` claim, if any.
    """
    if subject:
        key = f"sub:{issuer or ''}|{subject}"
    elif network is not None:
        if relayed_client and relayed_client.startswith("ip:"):
            key = relayed_client
        else:
            key = f"network:{network}"
    else:
        key = f"ip:{client}"
    return key[:_MAX_KEY]
