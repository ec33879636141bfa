"""Slack views: every message, card, modal and Home tab the bot sends is built here, one way.

:mod:`~bot.chat.views.kit` is the block kit (one function per Block Kit block or element, slack_sdk's
models underneath, every message checked against Slack's limits); each other module is one surface, a
pure function from plain data (dataclasses declared beside it, primitives) to validated blocks:
``approval``, ``progress``, ``release``, ``status``, ``cert``, ``help``, ``history``, ``stats``,
``digest``, ``schedules``, ``error``, ``notice``, ``home``, ``alert_card`` and ``form`` (a modal). Views
import nothing above ``bot.chat``: the layers above turn what they read into these data and call one
function per surface.

The helpers every caller formats text with are here too: :func:`when`, :func:`percent`, and
:mod:`bot.core.text`'s :func:`escape`, :func:`foreign` and :func:`cut`.
"""

from __future__ import annotations

from bot.chat.views.fmt import bar, percent, when
from bot.chat.views.kit import validate
from bot.core.text import cut, escape, foreign

__all__ = ["bar", "cut", "escape", "foreign", "percent", "validate", "when"]
