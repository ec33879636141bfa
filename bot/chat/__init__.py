"""Slack: the Bolt app, the HTTP server, the views (pure Block Kit), the messenger, the chat contract."""
