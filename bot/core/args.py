"""Argument checks shared by the sub-commands: every version, percentage and count is parsed here.

Versions, percentages, ids and counts are ASCII only. Python's ``\\d`` and ``str.isdigit()`` accept
any Unicode digit (a full-width ``２``, a superscript ``²``), which reads like an ASCII digit to an
approver and which ``int()`` may or may not accept; so nothing here uses them: every pattern is
compiled with ``re.ASCII``, and text with any non-ASCII character is refused before it is matched.
Anything that does not parse is a :class:`UsageError` for the person who typed it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from functools import cache

from bot.core.config import Config
from bot.core.durations import parse_duration
from bot.core.errors import UsageError
from bot.core.text import foreign

_WHOLE = re.compile(r"[0-9]{1,6}", re.ASCII)
_PERCENT = re.compile(r"([0-9]{1,4})%", re.ASCII)


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


def shown(text: str, limit: int = 40) -> str:
    """An argument echoed back in a reply: cut, escaped for mrkdwn, in a code span."""
    return f"`{foreign(text, limit)}`"


def whole_number(text: str, *, low: int, high: int, what: str, usage: str) -> int:
    """``"12"`` -> 12 when ``low <= 12 <= high``; anything else (``12.0``, ``²``, ``１２``) is a usage error."""
    if not text.isascii() or not _WHOLE.fullmatch(text):
        raise UsageError(f"{shown(text)} is not a {what}: write a whole number from {low} to {high}.", usage)
    value = int(text)
    if not low <= value <= high:
        raise UsageError(f"{value} is out of range: the {what} is a whole number from {low} to {high}.", usage)
    return value


def percent(text: str, usage: str) -> int:
    """``10%`` -> 10; anything else, or outside 0-100, is a :class:`UsageError`."""
    match = _PERCENT.fullmatch(text) if text.isascii() else None
    if not match:
        raise UsageError(f"{shown(text)} is not a percentage: write it like `10%`.", usage)
    value = int(match.group(1))
    if not 0 <= value <= 100:
        raise UsageError(f"{value}% is not a traffic share: use 0% to 100%.", usage)
    return value


VERSION_MOST = 128  # characters: the longest image tag a registry takes


def version(text: str, config: Config, usage: str) -> str:
    """The version as typed, if it is ASCII and matches ``HELLO_VERSION_PATTERN`` (matched with ``re.ASCII``)."""
    if len(text) > VERSION_MOST:
        raise UsageError(f"{shown(text)} is not a version I can deploy: a version is at most {VERSION_MOST} "
                         "characters, as an image tag is.", usage)
    if not text.isascii():
        raise UsageError(f"{shown(text)} is not a version I can deploy: versions are ASCII only "
                         "(a look-alike digit or letter is not accepted).", usage)
    if not _compiled(config.version_pattern).fullmatch(text):
        raise UsageError(f"{shown(text)} is not a version I can deploy: versions look like `v2` or `v2.1.0-rc1` "
                         f"(pattern `{foreign(config.version_pattern, 120)}`).", usage)
    return text


REASON_MOST = 300  # characters: a reason is shown whole in the approval request, the release and the audit trail
_NUMBERISH = re.compile(r"[0-9]+(?:\.[0-9]+)?%?", re.ASCII)


def reason(extra: Sequence[str], config: Config, usage: str, *, example: str, keywords: Sequence[str] = ()) -> str:
    """The reason for a change: the one argument after the command's own ones (``extra``), quoted.

    ``/hello deploy v2 "fix the login bug"``: the command text is split like a shell, so a quoted reason
    is one argument. More than one extra argument (``/hello deploy v2 fix the login bug``) is a usage error
    asking for quotes, and so is an extra argument that looks like one of the command's own — a version,
    a percentage, a bare number or one of ``keywords`` (``promote``, ``abort``, ...) — so that a mistyped
    argument never becomes a reason (``"v2 broke the login"`` is one argument and is accepted). With
    ``HELLO_REQUIRE_REASON`` a change without a reason is a usage error that shows ``example``. Free text:
    any script, not only ASCII; whitespace is flattened to single spaces; at most :data:`REASON_MOST`
    characters.
    """
    words = [w for w in extra if w.strip()]
    if len(words) > 1:
        raise UsageError(f"put the reason in quotes, as one argument: `{example}`", usage)
    if words:
        first = words[0].strip()
        looks_like = (first.lower() in keywords or (first.isascii() and _NUMBERISH.fullmatch(first) is not None)
                      or (first.isascii() and _compiled(config.version_pattern).fullmatch(first) is not None))
        if first.isascii() and _NUMBERISH.fullmatch(first) and not first.endswith("%"):
            raise UsageError(f"{shown(first)} is not a percentage (write it like `10%`) nor a reason (a reason goes "
                             f"last, in quotes: `{example}`)", usage)
        if looks_like:
            raise UsageError(f"{shown(first)} is one argument too many. A reason goes last, in quotes: "
                             f"`{example}`", usage)
    text = " ".join(words[0].split()) if words else ""
    if len(text) > REASON_MOST:
        raise UsageError(f"the reason is {len(text)} characters long: keep it to {REASON_MOST} "
                         "(link to a ticket for more).", usage)
    if not text and config.require_reason:
        raise UsageError(f"every change needs a reason here (HELLO_REQUIRE_REASON): add it last, in quotes: "
                         f"`{example}`", usage)
    return text


SPAN_MOST = timedelta(days=31)


def duration(text: str, usage: str) -> timedelta:
    """A length of time typed in chat (:func:`bot.core.durations.parse_duration`): more than zero, at most
    :data:`SPAN_MOST`."""
    value = parse_duration(text)
    if value is None:
        raise UsageError(f"{shown(text)} is not a duration: write it like `30m`, `2h`, `1d` or `1h30m`.", usage)
    if not timedelta(0) < value <= SPAN_MOST:
        raise UsageError(f"{shown(text)} is out of range: a duration is more than 0 and at most 31 days.", usage)
    return value
