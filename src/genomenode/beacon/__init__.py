"""GA4GH Beacon v2 support: the official schemas and offline validation against them.

See :mod:`genomenode.beacon.schemas`.
"""

from __future__ import annotations

from genomenode.beacon.schemas import (
    BeaconSchemaError,
    BeaconValidationError,
    validate,
    validator,
)

__all__ = ["BeaconSchemaError", "BeaconValidationError", "validate", "validator"]
