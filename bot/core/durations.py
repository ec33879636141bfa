"""Lengths of time: the one grammar people write them in, and the one way the bot writes them back.

The grammar is a whole number and a unit — ``s``, ``m``, ``h``, ``d`` or ``w`` — or a sum of such parts
(``90s``, ``10m``, ``2h``, ``7d``, ``1h30m``), ASCII only, in any case. Chat (``/hello freeze 2h``), the
catalogue (``freezes[].duration``), the settings (``HELLO_ANALYSIS_INTERVAL``) and Prometheus ranges
(``15m``) are all read by :func:`parse_duration`; each caller checks the range it allows.
"""

from __future__ import annotations

import re
from datetime import timedelta

_WHOLE = re.compile(r"(?:[0-9]{1,6}[smhdw])+", re.ASCII)
_PART = re.compile(r"([0-9]{1,6})([smhdw])", re.ASCII)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta | None:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"7d"``, ``"1w"`` or a sum like ``"1h30m"`` -> the time;
    ``None`` if it is not one (``"2"``, ``"1.5h"``, ``"2 h"``, a full-width ``"２h"``). Not range-checked."""
    lowered = text.lower()
    if not text.isascii() or not _WHOLE.fullmatch(lowered):
        return None
    return timedelta(seconds=sum(int(n) * UNITS[unit] for n, unit in _PART.findall(lowered)))


def duration(seconds: float | None, *, compact: bool = False) -> str:
    """A length of time for people.

    By default the way a clock shows elapsed time, always with the next smaller unit, in whole seconds
    (cut, not rounded): ``45s``, ``30m 00s``, ``64h 00m``. ``compact`` (figures over days and weeks):
    rounded, the smaller unit left out when it is zero, days after 48 hours: ``15m``, ``2h 05m``,
    ``3d 4h``. ``None`` (nothing to measure) is ``–``.
    """
    if seconds is None:
        return "–"
    whole = max(0, round(seconds) if compact else int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, sec = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m" if compact and not sec else f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if compact and hours >= 48:
        return f"{hours // 24}d {hours % 24}h"
    return f"{hours}h {minutes:02d}m"
