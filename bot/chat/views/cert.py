"""``/hello cert``: the certificate's readiness, expiry, renewal, names, and what cert-manager is doing."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from bot.chat.views import kit
from bot.chat.views.fmt import when
from bot.core.text import escape


class Condition(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...


class Certificate(Protocol):
    """A cert-manager Certificate as read (``bot.cluster.kube.CertState`` is one)."""

    @property
    def name(self) -> str: ...
    @property
    def ready(self) -> bool: ...
    @property
    def reason(self) -> str: ...
    @property
    def not_after(self) -> datetime | None: ...
    @property
    def renewal_time(self) -> datetime | None: ...
    @property
    def revision(self) -> int: ...
    @property
    def dns_names(self) -> tuple[str, ...]: ...
    @property
    def issuing(self) -> Condition | None: ...
    @property
    def failed_attempts(self) -> int: ...
    @property
    def last_failure(self) -> datetime | None: ...


def _failures(cert: Certificate, backoff: datetime | None) -> str:
    again = (f". cert-manager backs off until {when(backoff)}; `/hello cert renew` asks again now." if backoff
             else ".")
    return (f":warning: {cert.failed_attempts} failed issuance attempt(s) in a row, the last at "
            f"{when(cert.last_failure)}{again}")


def blocks(cert: Certificate, *, days: int | None, backoff: datetime | None, checked: str) -> list[dict]:
    """``days`` left before expiry; ``backoff``: until when cert-manager waits before trying again."""
    ready = ":white_check_mark: yes" if cert.ready else ":x: no" + (f" ({escape(cert.reason)})" if cert.reason else "")
    left = f" · {days} days left" if days is not None else ""
    issuing = cert.issuing
    return kit.blocks(
        kit.header(f"Certificate {cert.name}"),
        kit.section(fields=[f"*Ready*\n{ready}", f"*Expires*\n{when(cert.not_after)}{left}",
                            f"*Renews*\n{when(cert.renewal_time)}", f"*Revision*\n{cert.revision}"]),
        kit.section("*Names* `" + "`, `".join(cert.dns_names) + "`") if cert.dns_names else None,
        kit.section(f"*Issuing* {issuing.status} · {escape(issuing.reason)}"
                    + (f": {escape(issuing.message)}" if issuing.message else "")) if issuing else None,
        kit.section(_failures(cert, backoff)) if cert.failed_attempts else None,
        kit.context(f"Checked {checked} · renew with `/hello cert renew`"),
    )
