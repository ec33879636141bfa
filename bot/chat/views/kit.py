"""The block kit every view is built with: one small function per Block Kit block or element.

Each function returns slack_sdk's own model of the block (``slack_sdk.models.blocks``), with its text
cut to what Slack accepts there; :func:`blocks` turns a view's blocks into the JSON Slack is sent, after
checking each one against Slack's limits with the model's own validators (lengths, counts, required
fields), so a message Slack would refuse fails here, in tests, and never leaves the bot.

Texts are the bot's own mrkdwn: whatever came from elsewhere is escaped before it gets here
(:func:`bot.core.text.foreign`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    ImageBlock,
    InputBlock,
    InteractiveElement,
    MarkdownTextObject,
    Option,
    OptionGroup,
    PlainTextObject,
    RichTextBlock,
    RichTextElementParts,
    RichTextListElement,
    RichTextSectionElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks.block_elements import PlainTextInputElement
from slack_sdk.models.views import View

__all__ = ["MESSAGE_BLOCKS", "VIEW_BLOCKS", "Block", "actions", "blocks", "button", "context", "divider", "header",
           "image", "input_select", "input_text", "modal", "option", "option_group", "rich_list", "rich_text",
           "rich_user", "section", "select", "validate"]

MESSAGE_BLOCKS = 50  # blocks in a message
VIEW_BLOCKS = 100  # blocks in a modal or the Home tab
TEXT = 3000  # a section's text, a context element's
FIELD = 2000  # one of a section's fields
FIELDS = 10  # fields in a section
HEADER = 150  # a header's text
LABEL = 75  # a button's or an option's text
URL = 3000  # a button's link
OPTIONS = 100  # a select's options

RichPart = Any  # one of slack_sdk's RichTextElementParts (Text, User…)


def _mrkdwn(text: str, limit: int = TEXT) -> MarkdownTextObject:
    return MarkdownTextObject(text=text[:limit])


def _plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=text[:limit])


def section(text: str = "", *, fields: Sequence[str] = (), block_id: str | None = None) -> SectionBlock:
    """A section of mrkdwn ``text``, and up to ten ``fields`` shown in two columns (either may be left out)."""
    return SectionBlock(text=_mrkdwn(text) if text else None, block_id=block_id,
                        fields=[_mrkdwn(f, FIELD) for f in fields[:FIELDS]] or None)


def context(*texts: str, block_id: str | None = None) -> ContextBlock:
    """Small grey mrkdwn lines under a message's body, one element per text."""
    return ContextBlock(elements=[_mrkdwn(t) for t in texts], block_id=block_id)


def divider() -> DividerBlock:
    return DividerBlock()


def header(text: str) -> HeaderBlock:
    """A large plain-text title."""
    return HeaderBlock(text=_plain(text, HEADER))


def image(url: str, alt: str) -> ImageBlock:
    return ImageBlock(image_url=url[:URL], alt_text=alt[:2000])


def actions(elements: Sequence[InteractiveElement], *, block_id: str | None = None) -> ActionsBlock:
    """A row of buttons (or a select); ``block_id`` names the row when a listener needs it."""
    return ActionsBlock(elements=list(elements), block_id=block_id)


def button(text: str, action_id: str, *, value: str | None = None, style: str | None = None,
           url: str | None = None) -> ButtonElement:
    """A button: its own listener is the one registered for ``action_id`` (``bot/chat/listeners.py``);
    ``style`` is ``primary`` or ``danger``; a ``url`` button opens a link (and still sends an action)."""
    return ButtonElement(text=_plain(text, LABEL), action_id=action_id, value=value, style=style or None,
                         url=url[:URL] if url else None)


def option(text: str, value: str) -> Option:
    return Option(text=_plain(text, LABEL), value=value)


def option_group(label: str, options: Sequence[Option]) -> OptionGroup:
    """Options under a label, in a select of more than 100 (at most 100 in a group)."""
    return OptionGroup(label=_plain(label, LABEL), options=list(options[:OPTIONS]))


def select(action_id: str, options: Sequence[Option], placeholder: str, *,
           groups: Sequence[OptionGroup] = ()) -> StaticSelectElement:
    """A drop-down of at most 100 options, or of at most 100 ``groups`` of options (Slack's limits: the rest
    are left out)."""
    return StaticSelectElement(action_id=action_id, options=list(options[:OPTIONS]) or None,
                               option_groups=list(groups[:OPTIONS]) or None, placeholder=_plain(placeholder, 150))


def input_text(block_id: str, label: str, hint: str, *, optional: bool = False, placeholder: str = "",
               max_length: int = 100) -> InputBlock:
    """A form's text field; its value comes back under ``block_id`` (its action id too)."""
    element = PlainTextInputElement(action_id=block_id, max_length=max_length,
                                    placeholder=_plain(placeholder, 150) if placeholder else None)
    return InputBlock(block_id=block_id, optional=optional, element=element, label=_plain(label, 2000),
                      hint=_plain(hint, 2000))


def input_select(block_id: str, label: str, hint: str, select: StaticSelectElement, *,
                 optional: bool = False) -> InputBlock:
    """A form's drop-down (:func:`select`)."""
    return InputBlock(block_id=block_id, optional=optional, element=select, label=_plain(label, 2000),
                      hint=_plain(hint, 2000))


def modal(callback_id: str, title: str, *, submit: str, close: str, metadata: str,
          items: Sequence[Block]) -> dict:
    """A modal view, checked against Slack's limits (100 blocks, titles of 24 characters, metadata of 3000)."""
    view = View(type="modal", callback_id=callback_id, title=_plain(title, 24), submit=_plain(submit, 24),
                close=_plain(close, 24), private_metadata=metadata, blocks=blocks(items, limit=VIEW_BLOCKS))
    view.validate_json()
    return view.to_dict()


def rich_text(text: str, *, code: bool = False, bold: bool = False, italic: bool = False) -> RichPart:
    """Plain text in a rich-text line (no mrkdwn: nothing in it is markup), styled."""
    style = {k: True for k, on in (("bold", bold), ("italic", italic), ("code", code)) if on}
    return RichTextElementParts.Text(text=text, style=style or None)


def rich_user(user_id: str) -> RichPart:
    """A mention of a person in a rich-text line."""
    return RichTextElementParts.User(user_id=user_id)


def rich_list(lines: Sequence[Sequence[RichPart]]) -> RichTextBlock:
    """A bulleted list, one rich-text line per item."""
    items = [RichTextSectionElement(elements=list(parts)) for parts in lines]
    return RichTextBlock(elements=[RichTextListElement(style="bullet", elements=items)])


def blocks(*items: Block | Iterable[Block] | None, limit: int = MESSAGE_BLOCKS) -> list[dict]:
    """A view's blocks as the JSON Slack is sent, checked against Slack's limits (see :func:`validate`).

    ``items`` are blocks, lists of blocks, or ``None`` for a block a view leaves out.
    """
    flat: list[Block] = []
    for item in items:
        if item is not None:
            flat.extend([item] if isinstance(item, Block) else item)
    if len(flat) > limit:
        raise ValueError(f"{len(flat)} blocks: Slack accepts at most {limit}")
    return [block.to_dict() for block in flat]  # to_dict validates each block and what it holds


def validate(items: Sequence[dict], *, limit: int = MESSAGE_BLOCKS) -> list[dict]:
    """Check blocks against Slack's limits (``limit`` blocks: a message's, unless a view's is given) with
    slack_sdk's block models; raises ``SlackObjectFormationError`` or ``ValueError``."""
    if len(items) > limit:
        raise ValueError(f"{len(items)} blocks: Slack accepts at most {limit}")
    out = []
    for item in items:
        block = Block.parse(item)
        if block is None:
            raise ValueError(f"unknown block: {item!r:.80}")
        block.validate_json()
        out.append(block.to_dict())
    return out
