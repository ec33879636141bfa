"""Slack: the Bolt app, the HTTP server, pure rendering and templates, the messenger, the chat contract."""
