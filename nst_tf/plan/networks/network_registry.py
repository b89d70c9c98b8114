"""The networks nst_tf computes, by name: ``NETWORKS`` and ``get_network``.

Each is a ``Network`` description (``base.py``, free of TensorFlow) in a
module of its own, with a ``tf.Module`` that computes it. Adding a network:
a description module, its module computing it, a weights reader in
``nst_tf.plan.weights.readers``, and a line in ``NETWORKS``.
"""

from ...ground.errors import NSTError
from .base import Network
from .squeezenet import SQUEEZENET_NETWORK
from .vgg19 import VGG19_NETWORK

#: Network name -> its description.
NETWORKS = {network.name: network for network in (VGG19_NETWORK, SQUEEZENET_NETWORK)}

__all__ = ["NETWORKS", "Network", "SQUEEZENET_NETWORK", "VGG19_NETWORK", "get_network"]


def get_network(name):
    """The ``Network`` called ``name`` (a ``Network`` is returned as it is); ``NSTError`` for other names."""
    if isinstance(name, Network):
        return name
    if not isinstance(name, str) or name not in NETWORKS:
        raise NSTError(f"network must be one of {', '.join(NETWORKS)}; got {name!r}")
    return NETWORKS[name]
