"""What the tests share: the chat harness (with or without a cluster), alert webhooks, two clusters, a clock."""
