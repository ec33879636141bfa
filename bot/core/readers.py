"""Readers of setting values: text in, a typed value out, or :class:`ConfigError` naming the setting.

Shared by the environment variables (:mod:`bot.core.config`) and the catalogue file
(:mod:`bot.core.catalogue_file`), so a value means the same wherever it is written.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from bot.core.durations import parse_duration
from bot.core.errors import ConfigError


# variable name -> (field name, parser)
def text(name: str, value: str) -> str:
    return value.strip()


def integer(name: str, value: str, *, low: int = 0, high: int | None = None) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{name} must be {bound}, got {number}")
    return number


def seconds(name: str, value: str) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{name} must be greater than 0, got {value!r}")
    return number


def boolean(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


SLACK_ID = re.compile(r"^[USWGC][A-Z0-9]+$")


def ids(name: str, value: str, prefixes: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    for item in items:
        if not SLACK_ID.match(item) or item[0] not in prefixes:
            kinds = {"U": "user ids (U…)", "W": "user ids (W…)", "S": "user-group ids (S…)",
                     "C": "channel ids (C…)", "G": "private channel ids (G…)"}
            allowed = ", ".join(kinds[p] for p in prefixes)
            raise ConfigError(f"{name}: {item!r} is not one of {allowed}")
    return items


def channel(name: str, value: str) -> str:
    found = ids(name, value, "CG")
    if len(found) > 1:
        raise ConfigError(f"{name} takes one channel id, got {len(found)}")
    return found[0] if found else ""


def url(name: str, value: str) -> str:
    value = value.strip()
    if value and not re.match(r"^https?://[^\s/]+", value):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def pattern(name: str, value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{name} is not a valid regular expression: {exc}") from None
    return value


def timezone(name: str, value: str) -> str:
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name}: unknown time zone {value!r}") from None
    return value.strip()


def percents(name: str, value: str) -> tuple[int, ...]:
    """``"10,25,50"`` -> (10, 25, 50): whole percents from 1 to 100, rising."""
    parts = [part.strip().rstrip("%") for part in value.split(",") if part.strip()]
    out: list[int] = []
    for part in parts:
        if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= 100:
            raise ConfigError(f"{name}: {part!r} is not a whole percent from 1 to 100")
        out.append(int(part))
    if out != sorted(set(out)):
        raise ConfigError(f"{name} must rise, without repeats (like 10,25,50), got {value!r}")
    return tuple(out)


def duration_seconds(name: str, value: str) -> float:
    """``"60s"``, ``"2m"`` (:func:`bot.core.durations.parse_duration`) or plain seconds."""
    text = value.strip()
    length = parse_duration(text)
    try:
        seconds = length.total_seconds() if length is not None else float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a duration like 60s or 2m, got {value!r}") from None
    if not 1 <= seconds <= 86400:
        raise ConfigError(f"{name} must be between 1s and 24h, got {value!r}")
    return seconds


def _read_float(name: str, text: str, what: str) -> float:
    """``text`` as a finite number, or a :class:`ConfigError` saying it should be ``what``."""
    try:
        number = float(text.strip())
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {text!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"{name} must be {what}, got {text!r}")
    return number


def minutes(name: str, value: str) -> float:
    number = _read_float(name, value, "a number of minutes")
    if not 0 <= number <= 1440:
        raise ConfigError(f"{name} must be between 0 and 1440 minutes, got {value!r}")
    return number


def ratio(name: str, value: str) -> float:
    number = seconds(name, value)
    if number < 1:
        raise ConfigError(f"{name} must be at least 1 (canary latency / stable latency), got {value!r}")
    return number


def success(name: str, value: str) -> float:
    number = _read_float(name, value.strip().rstrip("%"), "a percentage like 99 or 99.5")
    if not 0 < number < 100:
        raise ConfigError(f"{name} must be between 0 and 100 (exclusive), got {value!r}")
    return number


def analysis_mode(name: str, value: str) -> str:
    value = value.strip().lower()
    if value not in ("auto", "advise"):
        raise ConfigError(f"{name} must be 'auto' (abort a failing canary) or 'advise' (pause and ask), got {value!r}")
    return value


AUTO_LOAD = "auto"
"""``HELLO_ANALYSIS_LOAD_RPS=auto``: the load's rate is chosen at each look from what the judge still needs."""


def load_rate(name: str, value: str) -> int | str:
    """A rate of requests per second (0: none), or ``auto``."""
    if value.strip().lower() == AUTO_LOAD:
        return AUTO_LOAD
    if not value.strip().lstrip("+-").isdigit():
        raise ConfigError(f"{name} must be a whole number of requests per second (0: no load) or 'auto', "
                          f"got {value.strip()!r}")
    return integer(name, value, low=0, high=10000)


def dns_label(name: str, value: str) -> str:
    value = value.strip()
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value) or len(value) > 63:
        raise ConfigError(f"{name} must be a DNS-1123 label (lower-case letters, digits and '-'), got {value!r}")
    return value


def url_path(name: str, value: str) -> str:
    """An HTTP path (``/v1/hello``): a slash first, then the characters of a URL's path and query."""
    value = value.strip()
    if not re.fullmatch(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*", value) or len(value) > 200:
        raise ConfigError(f"{name} must be an HTTP path starting with '/' (like /v1/hello), got {value!r}")
    return value


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


_TOP_KEY = re.compile(r"^([A-Z][A-Z0-9_]*)\s*:")


def yaml_error(exc: yaml.YAMLError, text: str, known: Collection[str] = ()) -> str:
    """Where a YAML file is broken: line, column and the setting it belongs to, never the text there.

    PyYAML's own message quotes the offending line (a token or a secret may be on it); this keeps only
    its line numbers, its description with anything quoted from the file removed, and the name of the
    nearest setting above the error when it is a known one.
    """
    if not isinstance(exc, yaml.MarkedYAMLError) or exc.problem_mark is None:
        return f"{type(exc).__name__} (details withheld: they may quote a secret)"
    mark = exc.problem_mark
    where = f"line {mark.line + 1}"
    start = exc.context_mark
    if start is not None and start.line != mark.line:
        where += f" (in what starts on line {start.line + 1})"
    problem = _QUOTED.sub("…", exc.problem or "syntax error")
    key = ""
    lines = text.splitlines()
    first = (start or mark).line
    for number in range(min(first, len(lines) - 1), -1, -1):
        found = _TOP_KEY.match(lines[number])
        if found:
            key = found.group(1) if found.group(1) in known else ""
            break
    return f"{where}{f', setting {key}' if key else ''}: {problem}"
