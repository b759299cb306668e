"""Who may see what: callers, access decisions, passport and visa verification."""

from .decision import (
    ANONYMOUS,
    Caller,
    CallerKind,
    DatasetAccess,
    allowed_granularity,
    caller_kind,
)
from .tokens import Identity, JwksCache, TokenVerifier, TrustedIssuer, Visa

__all__ = [
    "ANONYMOUS",
    "Caller",
    "CallerKind",
    "DatasetAccess",
    "Identity",
    "JwksCache",
    "TokenVerifier",
    "TrustedIssuer",
    "Visa",
    "allowed_granularity",
    "caller_kind",
]
