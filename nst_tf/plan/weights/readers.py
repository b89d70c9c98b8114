"""Reading a VGG-19 weights file of either kind, free of TensorFlow.

``read_weights(path)`` finds the kind from the first bytes (MatConvNet's .mat or Keras' .h5) and returns the
matching reader's ``VGGWeights``, so the command checks the weights before it loads TensorFlow.
"""

import ctypes
import sys

from ...ground.errors import WeightsFileError, quoted
from ..locations import missing_weights_hint
from .keras import EXPECTED_KINDS, file_kind, read_vgg19_h5
from .matconvnet import read_vgg19_mat
from .matfile import open_regular_file, weights_path
from .torchfile import torch_file_kind

#: The presets that run SqueezeNet (``nst_tf.runs.presets``, a layer above: a test checks the two agree).
SQUEEZENET_PRESETS = ("cs231n_composition_vii", "cs231n_scream", "cs231n_starry_night", "cs231n_feature_inversion")


def weights_file_kind(path):
    """ "mat" or "h5": the weights file at ``path``, from its first bytes (``keras.file_kind``); ``WeightsFileError``
    naming both kinds for a missing, empty, other or irregular file."""
    path = weights_path(path)
    # The name can only suggest which download was meant when the file is absent.
    hint = missing_weights_hint("keras" if path.lower().endswith((".h5", ".hdf5")) else "mat")
    with open_regular_file(path, missing_hint=hint, folder_problem=f"is a folder; {EXPECTED_KINDS}") as handle:
        try:
            if torch_file_kind(handle) is not None:
                raise WeightsFileError(
                    f"{quoted(path)}: is SqueezeNet's weights (a torch.save or .safetensors file), not VGG-19's; "
                    f"run SqueezeNet with --network squeezenet or a --preset of {', '.join(SQUEEZENET_PRESETS)}"
                )
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
    # Parsing frees about 450 MB of arrays, of which glibc keeps some 20 MB mapped (106 MB retained without this,
    # 81 MB with it); glibc's malloc_trim hands it back.
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
