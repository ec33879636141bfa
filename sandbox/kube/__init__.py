"""A Kubernetes API server emulator over real HTTP, with simulated Deployment and cert-manager controllers."""

from .emulator import KubeEmulator
from .faults import Fault
from .store import ApiError

__all__ = ["ApiError", "Fault", "KubeEmulator"]
