"""Fault rules: answer an error status or delay matching requests, checked before any state change."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            410: "Gone", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout"}


@dataclass
class Fault:
    """Answer `status` (or only wait `delay` seconds when status is None) for the next `count` matching
    requests; `verb`, `resource` and `name` None match anything. `count` None means every request."""

    verb: str | None = None
    resource: str | None = None
    name: str | None = None
    status: int | None = 500
    delay: float = 0.0
    count: int | None = 1
    message: str | None = None

    def matches(self, verb: str, resource: str, subresource: str, name: str | None) -> bool:
        if self.verb not in (None, "*", verb):
            return False
        if self.resource not in (None, "*", resource, f"{resource}/{subresource}"):
            return False
        return self.name in (None, "*", name)

    def reason(self) -> str:
        return _REASONS.get(self.status or 500, "Unknown")

    def default_message(self) -> str:
        code = self.status or 500
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        return f"injected fault: {code} {phrase}"
