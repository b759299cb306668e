"""Who may see what: callers, access decisions (passports and the DAC come later)."""

from .decision import (
    ANONYMOUS,
    Caller,
    CallerKind,
    DatasetAccess,
    allowed_granularity,
    caller_kind,
)

__all__ = [
    "ANONYMOUS",
    "Caller",
    "CallerKind",
    "DatasetAccess",
    "allowed_granularity",
    "caller_kind",
]
