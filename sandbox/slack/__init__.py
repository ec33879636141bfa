"""A local Slack workspace over real HTTP: Web API, file uploads, response URLs, signed requests."""

from .client import Reply, sign
from .server import SlackEmulator
from .state import Edit, Ephemeral, FileRecord, Message

__all__ = ["Edit", "Ephemeral", "FileRecord", "Message", "Reply", "SlackEmulator", "sign"]
