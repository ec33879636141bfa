"""One audit record as read back from the cluster: what the audit trail (``bot.release.audit``) hands its readers.

Declared in the lowest layer because it crosses the :class:`bot.core.ports.AuditTrail` port: history, the
delivery figures, digests, alert cards and promotion read it without knowing the trail that wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as read back from the cluster."""

    at: datetime
    reason: str
    verb: str
    phase: str
    user: str
    summary: str
    request_id: str = ""
    object: str = ""  # "Deployment/helloworld"
    note: str = ""
    facts: dict[str, Any] = field(default_factory=dict)  # JSON values, as the record carried them
    message: str = ""  # the Event's own message, as people read it in `kubectl get events`
    requester: str = ""
    change_reason: str = ""  # why the change was asked for, as the requester gave it (their text: escape it)
    action: str = ""  # deploy | canary | shift | promote | abort | rollback | renew ("" in records before it was kept)
    service: str = ""  # the catalogue's service and environment ("": one service, or a record from before them)
    environment: str = ""
