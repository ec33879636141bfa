"""Text the bot did not write, made safe for Slack's mrkdwn: the one escaping helper.

Everything the bot posts is mrkdwn written by the bot (mentions like ``<@U1>``, code spans), with
text from elsewhere put in: error texts from Kubernetes (the API server, admission webhooks),
Prometheus and Slack, users' arguments echoed back, Events' messages, Deployment and cert-manager
condition reasons and messages. Such text passes through :func:`foreign` once, where it enters a
string the bot builds (``bot.kube.translate`` for API errors, ``bot.args`` for arguments,
``bot.actions``/``bot.rollout``/``bot.status`` for what they read from objects); views escape
their plain-text fields again with :func:`escape`, which is idempotent, so nothing shows as
``&amp;lt;``. A core module: the cluster wrapper and the renderer both use it.
"""

from __future__ import annotations

import re
from typing import Any

FOREIGN_LIMIT = 300  # characters of text from elsewhere (an error, an Event, a condition) kept in a message
_BARE_AMP = re.compile(r"&(?!(?:amp|lt|gt);)")
# C0 and C1 controls (but tab, newline and carriage return, which are whitespace), DEL, and Unicode's
# Bidi_Control set (the embeddings, overrides, isolates and marks that reorder what a terminal shows)
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: Any) -> str:
    """``text`` without control characters and bidirectional controls, which would ring, erase or reverse
    what a terminal (``kubectl get events``) or a message shows. Applied to every text that enters the bot:
    the typed command, a form's values, and (through :func:`cut`) whatever the bot quotes from elsewhere."""
    return _CONTROLS.sub("", str(text))


def escape(text: Any) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup (``&``, ``<``, ``>``).

    Idempotent: an ``&`` that already starts ``&amp;``, ``&lt;`` or ``&gt;`` is kept, so text escaped
    where it entered (see :func:`foreign`) and escaped again by a template is not shown as ``&amp;lt;``.
    The result never holds a bare ``<`` or ``>``, so it can make no link, mention or ``<!channel>``.
    """
    return _BARE_AMP.sub("&amp;", str(text)).replace("<", "&lt;").replace(">", "&gt;")


def cut(text: Any, limit: int = FOREIGN_LIMIT) -> str:
    """``text`` on one line of at most ``limit`` characters (``…`` marks a cut)."""
    flat = " ".join(clean(text).split())
    return flat if len(flat) <= limit else flat[: max(0, limit - 1)].rstrip() + "…"


def foreign(text: Any, limit: int = FOREIGN_LIMIT) -> str:
    """Text the bot did not write (an API error, an Event's message, a user's argument) made safe for mrkdwn.

    This is the one place such text is made fit for a message: cut to ``limit`` characters, then escaped.
    Call it where the text enters a string the bot builds; the rest of that string is the bot's own
    mrkdwn (mentions, code spans) and is left alone.
    """
    return escape(cut(text, limit))
