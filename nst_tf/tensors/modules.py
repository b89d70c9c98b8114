"""Each network's ``tf.Module``, by network name: ``MODULES`` and ``build_network``.

A module is built as ``Class(weights, dtype=..., pooling=...)`` from what its reader gives
(``plan.weights.reader_registry``) and called as ``module(image, layers)`` -> {layer: activation}.
"""

from ..plan.networks.network_registry import get_network
from .squeezenet_module import SqueezeNet
from .vgg19_module import VGG19

#: Network name -> the ``tf.Module`` class computing it.
MODULES = {"vgg19": VGG19, "squeezenet": SqueezeNet}


def build_network(network, weights, dtype=None, pooling=None):
    """The ``tf.Module`` computing ``network`` (a name or a ``Network``) from ``weights``, with ``pooling``
    (default: the network's first choice) and ``dtype`` (default: the module's own). ``NSTError`` for weights
    not what the network's reader gives, an unknown pooling or network, or a dtype not floating-point.
    """
    network = get_network(network)
    options = {"pooling": network.poolings[0] if pooling is None else pooling}
    if dtype is not None:
        options["dtype"] = dtype
    return MODULES[network.name](weights, **options)
