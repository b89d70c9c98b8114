"""torchvision's SqueezeNet 1.1 weights (CS231n's network), read into ``SqueezeNetWeights`` without torch.

torchvision distributes ``squeezenet1_1-b8a52dc0.pth``, a torch.save file (zip or legacy) of the state dict: 52
tensors, 50 the convolutions of ``features`` (all style transfer needs), 2 the classifier's (dropped). A .safetensors
file of the same state dict is read too. The kind comes from the first bytes, never the name.

The file may be hostile: ``torchfile`` reads it, building only what torch.save builds for a state dict (nothing
is run), within ``SQUEEZENET_MAX_BYTES`` of tensors and ``SQUEEZENET_MAX_PICKLE_BYTES`` of pickle; each hostile
file the tests craft is refused in one line within 10 s and 48 MB over a real read. Feature shapes are checked
against ``PARAMETERS``; float16 and float64 become float32; non-finite values are refused.
"""

import math
import os

import numpy as np

from ...ground.errors import WeightsFileError, quoted
from ..locations import missing_weights_hint
from ..networks.squeezenet import FEATURE_PARAMETERS, PARAMETERS, SqueezeNetWeights, random_squeezenet_weights
from .matfile import open_regular_file, weights_path
from .torchfile import (
    read_open_safetensors,
    read_open_torch_file,
    torch_file_kind,
    write_safetensors,
    write_state_dict,
)

#: torchvision's file ("b8a52dc0" is the start of its SHA-256).
SQUEEZENET_WEIGHTS_FILE = "squeezenet1_1-b8a52dc0.pth"

EXPECTED_KINDS = (
    f"expected torchvision's {SQUEEZENET_WEIGHTS_FILE} (a torch.save file, zip or legacy format) "
    "or a .safetensors file of the same state dict"
)

#: Most bytes a SqueezeNet file's tensors may declare: all 52 of torchvision's tensors (1,235,496
#: numbers) as float64, and 1 MiB to spare. The real file holds them as float32, 4.9 MB.
SQUEEZENET_MAX_BYTES = 8 * sum(math.prod(shape) for shape in PARAMETERS.values()) + (1 << 20)

#: Most bytes of a SqueezeNet file's pickle: torch writes about 100 per tensor (5 KB here), plus a few KB of
#: module versions. A pickle builds at most about 80 bytes of objects per byte, so a hostile one stays near 20 MB.
SQUEEZENET_MAX_PICKLE_BYTES = 256 << 10

#: Types accepted for the weights; each is converted to float32.
FLOAT_TYPES = (np.float16, np.float32, np.float64)


def _fail(path, problem):
    """Raises ``WeightsFileError``: ``path`` (shown safely) and ``problem``, one line."""
    raise WeightsFileError(f"{quoted(path)}: {problem}")


def _file_kind(handle, path):
    """ "zip", "legacy" or "safetensors" for the open ``handle`` of ``path``; ``WeightsFileError`` for anything else."""
    try:
        kind = torch_file_kind(handle)
        empty = os.fstat(handle.fileno()).st_size == 0
    except OSError as error:  # an unreadable "file" such as /proc/self/mem
        _fail(path, f"cannot be read: {error.strerror or error}")
    if kind is None:
        what = "is empty" if empty else "is neither a torch.save file nor a .safetensors file"
        _fail(path, f"{what}; {EXPECTED_KINDS}")
    return kind


def squeezenet_file_kind(path):
    """ "zip", "legacy" (torch.save's formats) or "safetensors": the SqueezeNet weights file at ``path``, from its
    first bytes. ``WeightsFileError`` naming the file and the expected kinds: missing (with how to download it), a
    folder, not a regular file, empty, or of another kind."""
    path = weights_path(path)
    with open_regular_file(path, missing_weights_hint("squeezenet"), f"is a folder; {EXPECTED_KINDS}") as handle:
        return _file_kind(handle, path)


def read_squeezenet(path):
    """Reads torchvision's SqueezeNet 1.1 weights (``features`` only) from a torch.save or .safetensors file.

    Accepts the state dict, one wrapped as ``{"state_dict": ...}``, or one whose keys all start with ``module.``
    (as ``nn.DataParallel`` saves them).

    Returns:
        ``SqueezeNetWeights``: the 50 ``FEATURE_PARAMETERS`` as float32 arrays in PyTorch's layout (kernels
        OIHW); layout the file's kind ("zip", "legacy" or "safetensors"); source ``path``.

    Raises:
        WeightsFileError: (an ``NSTError``) one line naming the file and the problem: see
            ``squeezenet_file_kind``; truncated or damaged; a pickle that names anything but tensors (nothing
            of it is run); more than ``SQUEEZENET_MAX_BYTES`` declared; a key missing, of another network, of
            the wrong shape or type, or with NaN or infinite values; or, for .safetensors, the package missing.
    """
    path = weights_path(path)
    with open_regular_file(path, missing_weights_hint("squeezenet"), f"is a folder; {EXPECTED_KINDS}") as handle:
        kind = _file_kind(handle, path)
        if kind == "safetensors":
            tensors = read_open_safetensors(handle, path, max_bytes=SQUEEZENET_MAX_BYTES)
        else:
            root = read_open_torch_file(
                handle, path, kind, max_bytes=SQUEEZENET_MAX_BYTES, max_pickle_bytes=SQUEEZENET_MAX_PICKLE_BYTES
            )
            tensors = _state_dict(root, path)
    return SqueezeNetWeights(params=_feature_params(tensors, path), layout=kind, source=path)


def _state_dict(root, path):
    """The state dict in ``root``: itself or ``root["state_dict"]``, keys without ``module.``; ``WeightsFileError``
    for a non-dict or keys that are not strings."""
    if not isinstance(root, dict):
        _fail(path, f"holds a {type(root).__name__}, not a state dict (a dict of tensors)")
    if isinstance(root.get("state_dict"), dict):
        root = root["state_dict"]
    odd = next((key for key in root if type(key) is not str), None)
    if odd is not None:
        _fail(path, f"has a key of type {type(odd).__name__}; a state dict's keys are names")
    if root and all(key.startswith("module.") for key in root):
        root = {key[len("module.") :]: value for key, value in root.items()}
    return root


def _feature_params(tensors, path):
    """The 50 feature tensors of ``tensors`` (key -> array) as float32, each checked; ``WeightsFileError`` else."""
    unknown = [key for key in tensors if key not in FEATURE_PARAMETERS and not key.startswith("classifier.")]
    if unknown:
        _fail(
            path,
            f"holds {quoted(unknown[0][:80])}, which SqueezeNet 1.1 does not have ({len(unknown)} such keys); "
            f"not torchvision's SqueezeNet 1.1 weights ({SQUEEZENET_WEIGHTS_FILE})",
        )
    missing = [key for key in FEATURE_PARAMETERS if key not in tensors]
    if missing:
        _fail(
            path,
            f"has no {missing[0]} ({len(missing)} of SqueezeNet 1.1's {len(FEATURE_PARAMETERS)} feature tensors "
            f"missing); not torchvision's SqueezeNet 1.1 weights ({SQUEEZENET_WEIGHTS_FILE})",
        )
    params = {}
    for key in FEATURE_PARAMETERS:
        value, expected = tensors[key], PARAMETERS[key]
        if not isinstance(value, np.ndarray):
            _fail(path, f"{key} is a {type(value).__name__}, not a tensor")
        if value.shape != expected:
            _fail(path, f"{key} has shape {tuple(value.shape)}; expected {expected}")
        if value.dtype.type not in FLOAT_TYPES:
            _fail(path, f"{key} has type {value.dtype}; expected floating-point numbers (float16, float32 or float64)")
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused below
            params[key] = np.ascontiguousarray(value, dtype=np.float32)
        if not np.isfinite(params[key]).all():
            _fail(path, f"{key} contains NaN or infinite values (as float32)")
    return params


def write_squeezenet_weights(path, weights=None, format="zip", seed=0):
    """Writes SqueezeNet 1.1 weights as torchvision's state dict: its 52 tensors, the classifier's random.

    Args:
        path: the file to write (replaced atomically); returned.
        weights: ``SqueezeNetWeights``; by default ``random_squeezenet_weights(seed)``.
        format: "zip" or "legacy" (torch.save's, as ``write_state_dict`` writes them), or "safetensors".
        seed: seeds the default weights and the classifier's values.

    Raises:
        NSTError: an unknown format.
        WeightsFileError: ``path`` cannot be written, or the safetensors package is missing.
    """
    weights = random_squeezenet_weights(seed) if weights is None else weights
    rng = np.random.default_rng([seed, 1])
    tensors = {}
    for key, shape in PARAMETERS.items():
        if key in FEATURE_PARAMETERS:
            tensors[key] = np.asarray(weights.params[key], dtype=np.float32)
        else:
            tensors[key] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
    if format == "safetensors":
        return write_safetensors(path, tensors)
    return write_state_dict(path, tensors, format=format, top=_top_folder(path))


def _top_folder(path):
    """The zip's top folder torch would use for ``path``: the file's name without its extension."""
    stem = os.path.splitext(os.path.basename(os.fsdecode(path)))[0]
    return stem if stem and stem.isprintable() and stem not in (".", "..") and "\\" not in stem else "archive"
