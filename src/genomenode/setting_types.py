"""The kinds of values settings take: how each is parsed and checked, and
:class:`Secret`, which never shows its value; :class:`Setting`, one declared setting.

:mod:`genomenode.config` declares every setting (``SETTINGS``) with these. A parser
raises ``ValueError`` with what it expected; :func:`genomenode.config.parse_settings`
adds the setting's name and where the value came from.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Secret",
    "Setting",
    "boolean",
    "boolean_mechanism",
    "coefficient",
    "country",
    "environment",
    "fraction",
    "networks",
    "non_negative_float",
    "non_negative_int",
    "optional_str",
    "origins",
    "p_value",
    "positive_float",
    "positive_int",
    "secret",
    "string_list",
    "trusted_issuers",
    "trusted_networks",
    "url",
]


class Secret:
    """A secret value (passphrase, token, key) whose repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call only where it is used, never to print."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def positive_int(value: Any) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"must be a positive integer, not {value!r}")
    return number


def non_negative_int(value: Any) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(f"must be zero or a positive integer, not {value!r}")
    return number


def positive_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a positive number, not {value!r}")
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError(f"must be a positive number, not {value!r}")
    return number


def secret(value: Any) -> Secret:
    return value if isinstance(value, Secret) else Secret(str(value))


def optional_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def country(value: Any) -> str:
    text = str(value)
    if len(text) != 2 or not text.isalpha() or not text.isupper():
        raise ValueError(f"must be an ISO 3166-1 alpha-2 code such as FI, not {text!r}")
    return text


def url(value: Any) -> str:
    text = str(value).strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL, not {value!r}")
    return text


def environment(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("dev", "test", "prod"):
        raise ValueError(f"must be dev, test or prod, not {value!r}")
    return text


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, not {value!r}")


def non_negative_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be zero or a positive number, not {value!r}")
    number = float(value)
    if not 0 <= number < float("inf"):
        raise ValueError(f"must be zero or a positive number, not {value!r}")
    return number


def fraction(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number between 0 and 1, not {value!r}")
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(f"must be a number between 0 and 1, not {value!r}")
    return number


def coefficient(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number between -1 and 1, not {value!r}")
    number = float(value)
    if not -1 <= number <= 1:
        raise ValueError(f"must be a number between -1 and 1, not {value!r}")
    return number


def p_value(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"must be a p-value between 0 and 1, not {value!r}")
    number = float(value)
    if not 0 <= number < 1:
        raise ValueError(f"must be a p-value, 0 <= p < 1, not {value!r}")
    return number


def boolean_mechanism(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in ("noisy-threshold", "randomized-response"):
        raise ValueError(
            f"must be noisy-threshold or randomized-response, not {value!r}"
        )
    return text


def networks(value: Any) -> tuple[str, ...]:
    """Address ranges (CIDR); from the environment comma-separated."""
    names = string_list(value) if value not in (None, "", []) else ()
    for name in names:
        try:
            ipaddress.ip_network(name, strict=False)
        except ValueError:
            raise ValueError(f"{name!r} is not an address range (CIDR)") from None
    return tuple(str(ipaddress.ip_network(name, strict=False)) for name in names)


def string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and item for item in value
    ):
        raise ValueError(f"must be a list of names, not {value!r}")
    return tuple(value)


def trusted_issuers(value: Any) -> tuple[Mapping[str, str], ...]:
    """A list of ``{issuer, jku[, userinfo]}``; from the environment as JSON."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as error:
            raise ValueError(
                f"must be a JSON list of {{issuer, jku}}: {error}"
            ) from None
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of {issuer, jku[, userinfo]} mappings")
    issuers = []
    for number, item in enumerate(value):
        if not isinstance(item, Mapping) or set(item) - {"issuer", "jku", "userinfo"}:
            raise ValueError(
                f"entry {number} must be a mapping of issuer, jku and optionally "
                f"userinfo, not {item!r}"
            )
        if not item.get("issuer") or not item.get("jku"):
            raise ValueError(f"entry {number} needs both issuer and jku")
        entry = {"issuer": str(item["issuer"]), "jku": url(item["jku"])}
        if item.get("userinfo"):
            entry["userinfo"] = url(item["userinfo"])
        issuers.append(entry)
    return tuple(issuers)


def trusted_networks(value: Any) -> tuple[Mapping[str, str], ...]:
    """A list of ``{issuer, jku}``; from the environment as JSON."""
    networks = trusted_issuers(value)
    for number, item in enumerate(networks):
        if "userinfo" in item:
            raise ValueError(
                f"entry {number}: a network has no userinfo, only issuer and jku"
            )
    return networks


def origins(value: Any) -> tuple[str, ...]:
    """The ``cors_allowed_origins`` setting: ``*``, or origins
    (``scheme://host[:port]``, no path), from a list or comma-separated text.

    Raises
    ------
    ValueError
        An entry is not an http(s) origin, or ``*`` is listed with others.
    """
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) for item in value
    ):
        raise ValueError(f"must be a list of origins or *, not {value!r}")
    origins = []
    for item in value:
        if item == "*":
            origins.append(item)
            continue
        parts = urllib.parse.urlsplit(item.strip())
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ValueError(
                f"{item!r} is not an origin such as https://igv.org "
                "(scheme, host and port only)"
            )
        origins.append(f"{parts.scheme}://{parts.netloc.lower()}")
    if "*" in origins and len(origins) > 1:
        raise ValueError("* stands alone: it allows every origin")
    return tuple(origins)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its name, how to parse it, its default and what it does."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str

    @property
    def environment_variable(self) -> str:
        return "GENOMENODE_" + self.name.upper()
