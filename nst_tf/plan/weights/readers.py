"""Reading a VGG-19 weights file of either kind, free of TensorFlow.

``read_weights(path)`` finds the kind of the file from its first bytes
(``weights_file_kind``: MatConvNet's .mat or Keras' .h5), reads it with the
matching reader (``nst_tf.plan.weights.matconvnet.read_vgg19_mat`` or
``nst_tf.plan.weights.keras.read_vgg19_h5``) and returns a ``VGGWeights``. Nothing
here needs TensorFlow, so the command reads and checks the weights before it
loads TensorFlow, and before it creates anything.
"""

import ctypes
import sys

from ...ground.errors import WeightsFileError, quoted
from ..networks.vgg19 import DOWNLOAD_HINT
from .keras import EXPECTED_KINDS, KERAS_DOWNLOAD_HINT, file_kind, read_vgg19_h5
from .matconvnet import read_vgg19_mat
from .matfile import open_regular_file, weights_path


def weights_file_kind(path):
    """The kind of weights file at ``path``, "mat" or "h5", from its first bytes, not its name.

    See ``nst_tf.plan.weights.keras.file_kind``. Raises ``WeightsFileError``
    naming both expected kinds for a missing, empty or other file, and for
    anything that is not a regular file.
    """
    path = weights_path(path)
    # The name can only suggest which download was meant when the file is absent.
    hint = KERAS_DOWNLOAD_HINT if path.lower().endswith((".h5", ".hdf5")) else DOWNLOAD_HINT
    with open_regular_file(path, missing_hint=hint, folder_problem=f"is a folder; {EXPECTED_KINDS}") as handle:
        try:
            return file_kind(handle, path)
        except OSError as error:  # an unreadable "file" such as /proc/self/mem
            raise WeightsFileError(f"{quoted(path)}: cannot be read: {error.strerror or error}") from None


def read_weights(path):
    """The ``VGGWeights`` of the .mat or .h5 file at ``path``, whichever it is; ``WeightsFileError`` otherwise."""
    read = read_vgg19_h5 if weights_file_kind(path) == "h5" else read_vgg19_mat
    weights = read(path)
    _release_freed_heap()
    return weights


def _release_freed_heap():
    # Parsing the file frees about 450 MB of arrays; glibc keeps some 20 MB of
    # that heap mapped (measured with benchmarks/bench.py --child-load: 106 MB
    # retained without this, 81 MB with it). malloc_trim hands it back. Only
    # glibc has it; elsewhere this does nothing.
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
