"""A fast style model described without TensorFlow: the transformation network's shape (``TransformSpec``) and
the folder a training writes (``FastModelFolder``, ``FastModelDescription``).

The network is Johnson, Alahi and Fei-Fei 2016's: a 9x9 convolution, two stride-2 3x3 convolutions, residual
blocks of two 3x3 convolutions, two upsampling stages and a 9x9 convolution to three channels, with Ulyanov et
al.'s instance normalization after every convolution but the last; 32, 64 and 128 channels at ``width`` 1. With
``styles`` above 1 the normalizations are Dumoulin et al. 2017's conditional ones: one scale and shift per style,
so one network holds several styles and blends them. The folder::

    model/fast_model.json       what the network is and how it was trained (this module reads it)
    model/weights.weights.h5    its weights (Keras' weights file; read with every shape checked first)
    model/saved_model/          a SavedModel, serving_default: float32 0-255 RGB NHWC in and out
    model/model.tflite          the same network for TensorFlow Lite
    model/checkpoints/          the training's checkpoints (tf.train.CheckpointManager), resumed from
"""

import dataclasses
import json
import os

from ..ground.checks import check_choice, check_finite, check_whole
from ..ground.errors import NSTError, quoted
from ..ground.files import NotRegularFile, open_regular

DESCRIPTION_FILE = "fast_model.json"
WEIGHTS_FILE = "weights.weights.h5"
SAVED_MODEL_DIR = "saved_model"
TFLITE_FILE = "model.tflite"
CHECKPOINTS_DIR = "checkpoints"

#: What ``fast_model.json`` says it is; a file without it is not one of nst_tf's.
FORMAT = "nst_tf fast style model"
FORMAT_VERSION = 1

#: The largest description read: a few hundred bytes are written; anything far larger is not one.
MAX_DESCRIPTION_BYTES = 1 << 20

UPSAMPLINGS = ("resize", "transposed")
#: Johnson et al.'s channels at width 1: the first convolution's, after the first and second stride-2 stages.
FULL_CHANNELS = (32, 64, 128)
MAX_WIDTH = 4.0
MAX_STYLES = 64
MAX_BLOCKS = 16


@dataclasses.dataclass(frozen=True)
class TransformSpec:
    """The transformation network's shape. ``width``: a multiplier of Johnson's 32/64/128 channels (each rounded,
    at least 4); ``blocks``: residual blocks; ``upsampling``: "resize" (nearest-neighbour doubling then a 3x3
    convolution, which avoids the checkerboard pattern of Odena et al. 2016) or "transposed" (Johnson's stride-2
    transposed convolutions); ``styles``: how many styles the normalizations hold (above 1: conditional).

    The default width, 0.25 (8, 16 and 32 channels), is chosen for speed on a CPU: a 1024x1024 photo in under a
    second on two cores, on AVX-512 and on AVX2 alike (``benchmarks/fast_model.py``; docs/fast-models.md)."""

    width: float = 0.25
    blocks: int = 5
    upsampling: str = "resize"
    styles: int = 1

    def __post_init__(self):
        check_finite("width", self.width)
        if not 0 < self.width <= MAX_WIDTH:
            raise NSTError(f"width must be above 0 and at most {MAX_WIDTH:g}; got {self.width!r}")
        check_whole("blocks", self.blocks, 0, MAX_BLOCKS)
        check_choice("upsampling", self.upsampling, UPSAMPLINGS)
        check_whole("styles", self.styles, 1, MAX_STYLES)

    @property
    def channels(self):
        """(first, middle, inner) channel counts: Johnson's 32, 64, 128 times ``width``, rounded, at least 4."""
        return tuple(max(4, round(count * self.width)) for count in FULL_CHANNELS)

    def to_json(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, fields, where="network"):
        """The spec of a description's ``network`` field; ``NSTError`` naming ``where`` for anything else."""
        names = {field.name for field in dataclasses.fields(cls)}
        if not isinstance(fields, dict) or not set(fields) <= names:
            raise NSTError(f"{where}: expected an object with fields {', '.join(sorted(names))}")
        try:
            return cls(**fields)
        except NSTError as error:
            raise NSTError(f"{where}: {error}") from None


@dataclasses.dataclass(frozen=True)
class FastModelDescription:
    """What ``fast_model.json`` holds: the ``spec``, ``style_names`` (one per style, in the network's order) and
    ``training`` (a JSON object the trainer fills: objective, image size, iterations done, seed, ...)."""

    spec: TransformSpec
    style_names: tuple
    training: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        names = self.style_names
        if not isinstance(names, tuple) or len(names) != self.spec.styles or not all(isinstance(n, str) for n in names):
            raise NSTError(f"style_names: expected {self.spec.styles} names, one per style; got {names!r:.80}")
        if not isinstance(self.training, dict):
            raise NSTError("training: expected an object")

    def to_json(self):
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "network": self.spec.to_json(),
            "style_names": list(self.style_names),
            "training": self.training,
        }

    @classmethod
    def from_json(cls, data):
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise NSTError(f'not an nst_tf fast style model (no "format": "{FORMAT}")')
        if data.get("version") != FORMAT_VERSION:
            raise NSTError(f"version {data.get('version')!r:.20} of the format; this nst_tf reads {FORMAT_VERSION}")
        names = data.get("style_names")
        return cls(
            TransformSpec.from_json(data.get("network")),
            tuple(names) if isinstance(names, list) else names,
            data.get("training", {}),
        )


class FastModelFolder:
    """The files of a fast model folder at ``path`` (see the module); nothing is read or created here."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def description(self):
        return self.file(DESCRIPTION_FILE)

    @property
    def weights(self):
        return self.file(WEIGHTS_FILE)

    @property
    def saved_model(self):
        return self.file(SAVED_MODEL_DIR)

    @property
    def tflite(self):
        return self.file(TFLITE_FILE)

    @property
    def checkpoints(self):
        return self.file(CHECKPOINTS_DIR)

    def read_description(self):
        """The folder's ``FastModelDescription``; ``NSTError`` in one line naming the folder and the fix for a
        missing folder or file, a file that is not regular, too large, not JSON or not a description."""
        where = f"--fast_model {quoted(self.path)}"
        if not os.path.isdir(self.path):
            raise NSTError(f"{where}: no such folder; train one with: python -m nst_tf.train --help")
        try:
            with open_regular(self.description) as file:
                text = file.read(MAX_DESCRIPTION_BYTES + 1)
        except FileNotFoundError:
            raise NSTError(
                f"{where}: no {DESCRIPTION_FILE} in it; give the folder python -m nst_tf.train wrote (its --output_dir)"
            ) from None
        except (NotRegularFile, OSError) as error:
            raise NSTError(f"{where}: cannot read {DESCRIPTION_FILE}: {error.strerror or error}") from None
        if len(text) > MAX_DESCRIPTION_BYTES:
            raise NSTError(f"{where}: {DESCRIPTION_FILE} is larger than {MAX_DESCRIPTION_BYTES} bytes: not one")
        try:
            return FastModelDescription.from_json(json.loads(text.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise NSTError(f"{where}: {DESCRIPTION_FILE} is not JSON; train the model again") from None
        except NSTError as error:
            raise NSTError(f"{where}: {DESCRIPTION_FILE}: {error}") from None
