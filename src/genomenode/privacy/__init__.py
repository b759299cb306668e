"""Membership attacks on beacons, run by the operator (docs/privacy-attacks.md)."""

__all__: list[str] = []
