"""The course's constants (``CONFIG``) and the run's hyperparameters.

``StyleTransferConfig`` is the one place hyperparameters are defined: the
library's defaults and the command line's defaults both come from it.
"""

from dataclasses import dataclass, field
import math
import numbers

import numpy as np

from .costs import STYLE_LAYERS, TV_FORMS
from .errors import NSTError
from .vgg import GRAPH_LAYERS, MIN_IMAGE_SIZE


def _read_only(array):
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class CourseConfig:
    """The course helper's ``CONFIG`` class, as a frozen dataclass.

    MEANS is subtracted from RGB pixels (no BGR swap, as in the course) and
    equals the mean pixel stored in imagenet-vgg-verydeep-19.mat.
    """

    IMAGE_WIDTH: int = 400
    IMAGE_HEIGHT: int = 300
    COLOR_CHANNELS: int = 3
    NOISE_RATIO: float = 0.6
    MEANS: np.ndarray = field(
        default_factory=lambda: _read_only(np.array([123.68, 116.779, 103.939], dtype=np.float32).reshape(1, 1, 1, 3))
    )
    VGG_MODEL: str = "pretrained-model/imagenet-vgg-verydeep-19.mat"
    STYLE_IMAGE: str = "images/style.jpg"
    CONTENT_IMAGE: str = "images/content.jpg"
    OUTPUT_DIR: str = "output/"


CONFIG = CourseConfig()

#: Names accepted for ``StyleTransferConfig.precision``.
PRECISIONS = ("float32", "bf16", "fp16")

#: Names accepted for ``StyleTransferConfig.optimizer``.
OPTIMIZERS = ("adam", "lbfgs")

#: Names accepted for ``StyleTransferConfig.preserve_colors``.
COLOR_MODES = ("luminance", "histogram")


@dataclass(frozen=True)
class StyleTransferConfig:
    """Hyperparameters of one style-transfer run; the defaults are the course's.

    Attributes:
        epochs: number of Adam iterations (the course's num_iterations).
        print_every: report costs (and the CLI saves an image) when
            ``iteration % print_every == 0``, and after the last iteration.
        learning_rate: Adam's learning rate.
        alpha, beta: weights of the content and style costs in the total.
        noise_ratio: share of uniform noise in the initial image.
        width, height: size the content and style images are brought to.
        content_layer: layer whose activations define content.
        style_layers: (layer, weight) pairs for the style cost.
        seed: seed of the initial noise; None draws a fresh one.
        precision: "float32" (the course's), or "bf16" / "fp16": the network
            runs in bfloat16 / float16 while the image, Gram matrices and
            costs stay float32.
        jit_compile: compile the training loop with XLA.
        tv_weight: weight of the total-variation regularizer (0: off, the course).
        tv_form: "squared" (sum of squared neighbour differences) or "power"
            (the Keras variant's sum of (dx^2 + dy^2)^1.25).
        optimizer: "adam" (the course's, with ``learning_rate``) or "lbfgs"
            (one curvature history for the whole run, unit step).
        lbfgs_history: number of curvature pairs L-BFGS keeps.
        preserve_colors: None (the course), "luminance" (keep the content's
            chrominance, YIQ) or "histogram" (recolour the style image to the
            content's colour mean and covariance before optimizing).
        style_blend_weights: one weight per style image (normalized to sum
            to 1); None weighs several style images equally.
        max_size: if set, images keep the content's aspect ratio with this
            longer side, instead of ``width`` x ``height`` (used by ``load_image``
            callers such as the command line).
    """

    epochs: int = 200
    print_every: int = 20
    learning_rate: float = 2.0
    alpha: float = 10.0
    beta: float = 40.0
    noise_ratio: float = CONFIG.NOISE_RATIO
    width: int = CONFIG.IMAGE_WIDTH
    height: int = CONFIG.IMAGE_HEIGHT
    content_layer: str = "conv4_2"
    style_layers: tuple = tuple(STYLE_LAYERS)
    seed: int | None = None
    precision: str = "float32"
    jit_compile: bool = False
    tv_weight: float = 0.0
    tv_form: str = "squared"
    optimizer: str = "adam"
    lbfgs_history: int = 100
    preserve_colors: str | None = None
    style_blend_weights: tuple | None = None
    max_size: int | None = None

    def __post_init__(self):
        _check_whole("epochs", self.epochs, 1)
        _check_whole("print_every", self.print_every, 1)
        _check_whole("width", self.width, MIN_IMAGE_SIZE)
        _check_whole("height", self.height, MIN_IMAGE_SIZE)
        _check_number("learning_rate", self.learning_rate, positive=True)
        _check_number("alpha", self.alpha)
        _check_number("beta", self.beta)
        _check_number("noise_ratio", self.noise_ratio)
        if self.noise_ratio > 1:
            raise NSTError(f"noise_ratio must be between 0 and 1; got {self.noise_ratio!r}")
        _check_layer("content_layer", self.content_layer)
        pairs = tuple((name, weight) for name, weight in self.style_layers)
        for name, weight in pairs:
            _check_layer("style layer", name)
            _check_number(f"weight of style layer {name}", weight)
        object.__setattr__(self, "style_layers", pairs)
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise NSTError(f"seed must be a non-negative whole number; got {self.seed!r}")
        _check_choice("precision", self.precision, PRECISIONS)
        if not isinstance(self.jit_compile, bool):
            raise NSTError(f"jit_compile must be True or False; got {self.jit_compile!r}")
        _check_number("tv_weight", self.tv_weight)
        _check_choice("tv_form", self.tv_form, TV_FORMS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("preserve_colors", self.preserve_colors, (None,) + COLOR_MODES)
        _check_whole("lbfgs_history", self.lbfgs_history, 1)
        if self.max_size is not None:
            _check_whole("max_size", self.max_size, MIN_IMAGE_SIZE)
        if self.style_blend_weights is not None:
            weights = tuple(self.style_blend_weights)
            for weight in weights:
                _check_number("style blend weight", weight)
            if not weights or sum(weights) <= 0:
                raise NSTError(f"style_blend_weights must hold at least one positive weight; got {weights!r}")
            object.__setattr__(self, "style_blend_weights", weights)


def _check_whole(name, value, least):
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        what = "a positive whole number" if least == 1 else f"a whole number of at least {least}"
        raise NSTError(f"{name} must be {what}; got {value!r}")


def _check_number(name, value, positive=False):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise NSTError(f"{name} must be a finite number; got {value!r}")
    if value < 0 or (positive and value == 0):
        raise NSTError(f"{name} must be {'positive' if positive else 'zero or more'}; got {value!r}")


def _check_choice(name, value, choices):
    if value not in choices:
        shown = ", ".join("None" if c is None else c for c in choices)
        raise NSTError(f"{name} must be one of {shown}; got {value!r}")


def _check_layer(what, name):
    if name not in GRAPH_LAYERS:
        raise NSTError(f"{what} {name!r} is not a VGG-19 layer; valid names: {', '.join(GRAPH_LAYERS)}")
