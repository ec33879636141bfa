"""The sandbox console: a Slack-like web page over the Slack emulator."""
