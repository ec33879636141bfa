"""Kubernetes: the client wrapper (retries live here), the compare-and-swap ConfigMap store, leader election."""
