"""Kubernetes: a service's namespace as a ``Cluster`` of parts (kube.py), the connection and the one way to call
the API server, retries included (client.py), the traffic router, the compare-and-swap ConfigMap store, leader
election."""
