"""Each network's weights reader, by network name: ``READERS`` and ``read_network_weights``.

A reader takes a path and returns its network's weights without TensorFlow, or raises ``WeightsFileError`` (one
line naming the file). A new network's reader goes here, beside its description (``network_registry``).
"""

import os

from ...ground.errors import WeightsFileError
from ..networks.network_registry import get_network
from .readers import read_weights
from .squeezenet_reader import read_squeezenet

#: Network name -> the function reading its weights file.
READERS = {"vgg19": read_weights, "squeezenet": read_squeezenet}


def read_network_weights(network, path):
    """The weights of ``network`` (a name or a ``Network``) in the file at ``path``, read without TensorFlow.

    Raises:
        WeightsFileError: not a path, or a file missing, unreadable, damaged or not this network's.
        NSTError: for an unknown network.
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise WeightsFileError(f"the weights file must be a path; got {type(path).__name__}")
    return READERS[get_network(network).name](path)
