"""helloworld: the Sanic service that hello-chatops releases on Kubernetes.

Routes: ``/v1/hello``, ``/v2/hello``, ``/healthz``, ``/readyz`` and ``/metrics``. Start it with
``python -m helloworld`` (see ``--help``), build it in-process with :func:`helloworld.app.create_app`,
or launch a real process from Python with :func:`helloworld.runner.start`.
"""

__all__ = ["__version__"]

__version__ = "1.0.0"
