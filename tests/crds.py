"""The upstream CRD schemas beside the checkout (``../shared/crds``), for offline manifest validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CRD_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "crds"


def strict(schema: Any) -> Any:
    """Reject fields a structural schema does not declare, as the API server's strict field validation
    does (otherwise unknown fields are dropped silently, which hides typos)."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema
