"""``/hello help``: every command in one line each, or one command's whole help."""

from __future__ import annotations

from bot.chat.views import kit

TITLE = "hello-chatops: release helloworld from Slack"


def overview(lines: str) -> list[dict]:
    """Every command: ``lines`` is one ``usage  summary`` line each."""
    return kit.blocks(
        kit.header(TITLE),
        kit.section(lines),
        kit.context("Changes need an approver's click. `/hello help <command>` explains one command."),
    )


def topic(usage: str, text: str) -> list[dict]:
    """One command's usage and help text."""
    return kit.blocks(kit.header(TITLE), kit.section(f"*`{usage}`*\n{text}"))
