"""The course's constants (``CONFIG``) and the run's hyperparameters (``StyleTransferConfig``: the library's and the
command's defaults and help texts), free of TensorFlow, so the command checks its options before loading it."""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from ..ground.errors import NSTError
from ..ground.fields import option
from .networks.network_registry import NETWORKS, Network, get_network
from ..ground.checks import check_choice, check_finite, check_whole
from .optimizers import OPTIMIZERS as OPTIMIZER_REGISTRY
from .optimizers import get_optimizer


def _read_only(array):
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class CourseConfig:
    """The course helper's ``CONFIG`` class, frozen. ``MEANS``, the mean pixel of imagenet-vgg-verydeep-19.mat,
    is subtracted from RGB pixels (no BGR swap, as in the course) in float64, as the course's NumPy array is."""

    IMAGE_WIDTH: int = 400
    IMAGE_HEIGHT: int = 300
    COLOR_CHANNELS: int = 3
    NOISE_RATIO: float = 0.6
    MEANS: np.ndarray = field(
        default_factory=lambda: _read_only(np.array(NETWORKS["vgg19"].mean_pixel).reshape((1, 1, 1, 3)))
    )
    VGG_MODEL: str = "pretrained-model/imagenet-vgg-verydeep-19.mat"
    STYLE_IMAGE: str = "images/style.jpg"
    CONTENT_IMAGE: str = "images/content.jpg"
    OUTPUT_DIR: str = "output/"


CONFIG = CourseConfig()

#: Where the second edition keeps Keras' VGG19 weights (``python -m nst_tf.download --weights keras`` puts them there).
KERAS_VGG_MODEL = "pretrained-model/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"

#: The course's style layers and their weights (lambda^[l]), summing to 1 (VGG-19's defaults).
STYLE_LAYERS = list(NETWORKS["vgg19"].style_layers)

# The choices of each option; the modules that act on them import them and test that they handle exactly these.

#: ``precision``: the network's dtype ("auto": what this machine runs natively).
PRECISIONS = ("float32", "bf16", "fp16", "auto")

#: ``optimizer`` (what each supports: ``optimizers.OPTIMIZERS``).
OPTIMIZERS = tuple(OPTIMIZER_REGISTRY)

#: ``preserve_colors`` (besides None).
COLOR_MODES = ("luminance", "histogram")

#: ``tv_form``.
TV_FORMS = ("squared", "power")

#: ``normalization``: "means", RGB minus ``CONFIG.MEANS`` (the first edition, and the Caffe convention nst_tf's
#: Keras weights are converted to); "unit", RGB in [0, 1], no swap to VGG-19's BGR (the second edition's).
NORMALIZATIONS = ("means", "unit", "imagenet")

#: ``start``: the initial image.
STARTS = ("course", "additive", "content", "uniform")

#: ``style_normalizer``: what each layer's squared Gram difference is divided by.
STYLE_NORMALIZERS = ("layer", "image", "gram")

#: ``content_normalizer``: what the content's sum of squared differences is divided by.
CONTENT_NORMALIZERS = ("layer", "none")


#: The options of fixed choices, each with its choices.
_CHOICES = (
    ("precision", PRECISIONS),
    ("tv_form", TV_FORMS),
    ("optimizer", OPTIMIZERS),
    ("preserve_colors", (None,) + COLOR_MODES),
    ("normalization", NORMALIZATIONS),
    ("start", STARTS),
    ("style_normalizer", STYLE_NORMALIZERS),
    ("content_normalizer", CONTENT_NORMALIZERS),
)


def _pairs(text, form, key):
    """Comma-separated ``KEY:NUMBER`` items as ((key(KEY), float(NUMBER)), ...); NSTError naming ``form``."""
    pairs = []
    for item in text.split(","):
        name, sep, number = item.strip().partition(":")
        try:
            pairs.append((key(name), float(number)))
        except ValueError:
            sep = ""
        if not sep or not name:
            raise NSTError(f"expected {form} pairs separated by commas; got {text!r}")
    return tuple(pairs)


def parse_learning_rate_steps(text):
    """``"180:0.1,400:0.01"`` -> ((180, 0.1), (400, 0.01)); the command's form of ``learning_rate_steps``."""
    return _pairs(text, "ITERATION:RATE", int) if text.strip() else ()


def parse_range(text):
    """``"-1.5:1.5"`` -> (-1.5, 1.5); the command's form of ``clamp``."""
    low, sep, high = text.partition(":")
    try:
        return float(low), float(high)
    except ValueError:
        raise NSTError(f"expected LOW:HIGH; got {text!r}") from None


def parse_style_layers(text):
    """``"conv1_1:0.5,conv2_1:0.5"`` -> (("conv1_1", 0.5), ("conv2_1", 0.5)); the command's form of ``style_layers``."""
    return _pairs(text, "NAME:WEIGHT", str)


@dataclass(frozen=True)
class StyleTransferConfig:
    """Hyperparameters of one style-transfer run; the defaults are the course's, each field's ``metadata["help"]``
    says what it does (as ``python -m nst_tf -h``). ``NSTError`` for a value out of its range or choices."""

    epochs: int = option(200, "number of iterations (the course's num_iterations)", metavar="N")
    print_every: int = option(
        20,
        "report costs after iteration i when i % N == 0 (the command prints the course's lines and saves "
        "<i>.png) and after the last iteration (the command's summary line gives its costs)",
        metavar="N",
    )
    learning_rate: float = option(2.0, "Adam's learning rate (the first of a schedule)", metavar="X")
    learning_rate_steps: tuple = option(
        (),
        "a schedule: from iteration I on, the learning rate is RATE (CS231n: 180:0.1); Adam keeps its moments "
        "(as CS231n's TF edition does; its PyTorch edition starts a new Adam there)",
        metavar="I:RATE,...",
        type=parse_learning_rate_steps,
    )
    adam_epsilon: float = option(
        1e-8, "Adam's epsilon: 1e-8 is TF1's AdamOptimizer (the first edition), 1e-7 Keras' (the second)", metavar="X"
    )
    adam_beta_1: float = option(0.9, "Adam's decay of its first moment (the TensorFlow tutorial's: 0.99)", metavar="X")
    adam_beta_2: float = option(0.999, "Adam's decay of its second moment", metavar="X")
    average: float = option(
        0.0,
        "Adam only: report, save and hand to the next scale an exponential moving average of the iterates with "
        "this decay (e.g. 0.99; bias-corrected), not the last iterate; 0: off (the course)",
        metavar="DECAY",
    )
    alpha: float = option(10.0, "weight of the content cost", metavar="X")
    beta: float = option(40.0, "weight of the style cost", metavar="X")
    noise_ratio: float = option(CONFIG.NOISE_RATIO, "share of uniform noise in the initial image", metavar="X")
    content_layer: str = option(
        NETWORKS["vgg19"].content_layer, "layer whose activations define content", metavar="LAYER"
    )
    style_layers: tuple = option(
        tuple(STYLE_LAYERS), "style layers and their weights", metavar="NAME:W,...", type=parse_style_layers
    )
    seed: int | None = option(
        None,
        "seed of the initial noise; with it, a rerun on the same machine gives byte-identical images "
        "(default: a fresh seed)",
        metavar="N",
        type=int,
    )
    precision: str = option(
        "float32",
        "the network's precision: float32 (the course's), bf16, fp16, or auto (bf16 where this "
        "machine runs it faster, else float32); images, Gram matrices and costs stay float32",
        choices=PRECISIONS,
    )
    jit_compile: bool = option(False, "compile the optimization loop with XLA", action="store_true")
    tv_weight: float = option(0.0, "weight of the total-variation regularizer (0: off, the course)", metavar="X")
    tv_form: str = option(
        "squared",
        "squared: sum of squared neighbour differences; power: sum of (dx^2+dy^2)^1.25 (the Keras variant)",
        choices=TV_FORMS,
    )
    optimizer: str = option(
        "adam",
        "adam (the course's, uses --learning_rate) or lbfgs (one curvature history for the whole run)",
        choices=OPTIMIZERS,
    )
    lbfgs_history: int = option(100, "curvature pairs L-BFGS keeps", metavar="N")
    preserve_colors: str | None = option(
        None,
        "keep the content's colours: luminance (its YIQ chrominance under the result's luminance) or "
        "histogram (the style recoloured to the content's RGB mean and covariance before optimizing)",
        choices=COLOR_MODES,
    )
    style_blend_weights: tuple | None = option(
        None, "one weight per style image, normalized to sum to 1 (default: equal)", metavar="W", type=float, nargs="+"
    )

    normalization: str = option(
        "means",
        "what the network is fed: means (RGB minus the ImageNet means, the first edition), unit "
        "(RGB in [0, 1] with no mean subtraction and no swap to BGR, the second edition) or imagenet "
        "(RGB / 255 minus ImageNet's mean, over its standard deviation: torchvision's, SqueezeNet's)",
        choices=NORMALIZATIONS,
    )
    start: str = option(
        "course",
        "initial image: course (uniform noise in [-20, 20) blended with the content by noise_ratio), "
        "additive (the content plus uniform noise in [-noise_ratio, noise_ratio), clipped to the pixel range, "
        "the second edition's start), content (the content image itself, CS231n's) or uniform (uniform noise in "
        "[0, 1) of the normalized image, CS231n's feature inversion)",
        choices=STARTS,
    )
    clip: bool = option(
        False, "clip the image to the valid pixel range after every step (the second edition)", action="store_true"
    )
    clamp: tuple | None = option(
        None,
        "clamp the normalized image to [LOW, HIGH] before each step (CS231n: -1.5:1.5), until --clamp_until",
        metavar="LOW:HIGH",
        type=parse_range,
    )
    clamp_until: int | None = option(
        None,
        "with --clamp: clamp before iterations 0 .. N-1 only (CS231n: 190; default: every one)",
        metavar="N",
        type=int,
    )
    style_normalizer: str = option(
        "layer",
        "layer: each style layer's cost is divided by 4 n_C^2 (n_H n_W)^2 of that layer (the course); "
        "image: by 4 * 3^2 * (H W)^2 of the image (the Keras L-BFGS variant)",
        choices=STYLE_NORMALIZERS,
    )
    content_normalizer: str = option(
        "layer",
        "layer: the content cost is divided by 4 n_H n_W n_C of its layer (the course); none: the plain sum of "
        "squared differences (CS231n)",
        choices=CONTENT_NORMALIZERS,
    )

    network: str = option(
        "vgg19", "the network whose layers the costs read (its weights file: --model)", choices=tuple(NETWORKS)
    )

    def __post_init__(self):
        for name in ("epochs", "print_every", "lbfgs_history"):
            check_whole(name, getattr(self, name))  # counted in 32-bit integers inside the traced loop
        for name in ("learning_rate", "adam_epsilon", "alpha", "beta", "noise_ratio", "tv_weight"):
            _check_number(name, getattr(self, name), positive=name in ("learning_rate", "adam_epsilon"))
        if self.noise_ratio > 1:
            raise NSTError(f"noise_ratio must be between 0 and 1; got {self.noise_ratio!r}")
        for name in ("adam_beta_1", "adam_beta_2", "average"):
            _check_number(name, getattr(self, name))
            if getattr(self, name) >= 1:
                raise NSTError(f"{name} must be at least 0 and below 1; got {getattr(self, name)!r}")
        if self.average:
            get_optimizer(self.optimizer).check_averaging("average")
        for name in ("jit_compile", "clip"):
            if not isinstance(getattr(self, name), bool):
                raise NSTError(f"{name} must be True or False; got {getattr(self, name)!r}")
        if isinstance(self.network, Network) and NETWORKS.get(self.network.name) is self.network:
            object.__setattr__(self, "network", self.network.name)  # a registered description, by its name
        check_choice("network", self.network, tuple(NETWORKS))  # as registered now, later registrations too
        for name, choices in _CHOICES:
            check_choice(name, getattr(self, name), choices)
        network = get_network(self.network)
        network.check_layer("content_layer", self.content_layer)
        try:
            pairs = tuple((name, weight) for name, weight in self.style_layers)
        except (TypeError, ValueError):
            raise NSTError(f"style_layers must be (layer name, weight) pairs; got {self.style_layers!r}") from None
        for name, weight in pairs:
            network.check_layer("style layer", name)
            _check_number(f"weight of style layer {name}", weight)
        object.__setattr__(self, "style_layers", pairs)
        object.__setattr__(self, "seed", check_seed(self.seed))
        network.check_normalization(self.normalization)
        object.__setattr__(self, "learning_rate_steps", _checked_steps(self.learning_rate_steps))
        if self.learning_rate_steps:
            get_optimizer(self.optimizer).check_schedule("learning_rate_steps")
        object.__setattr__(self, "clamp", _checked_range("clamp", self.clamp))
        if self.clamp_until is not None:
            check_whole("clamp_until", self.clamp_until, 0)
            if self.clamp is None:
                raise NSTError("clamp_until needs clamp (the range to clamp to, e.g. --clamp -1.5:1.5)")
        if self.preserve_colors is not None and self.normalization != "means":
            raise NSTError(
                "preserve_colors needs normalization 'means' (its colour spaces are defined on 0..255 pixels)"
            )
        if self.style_blend_weights is not None:
            object.__setattr__(self, "style_blend_weights", _checked_blend_weights(self.style_blend_weights))

    def is_report(self, iteration):
        """Whether iteration ``iteration`` (0-based) is reported: every ``print_every``-th, and the last."""
        return iteration % self.print_every == 0 or iteration == self.epochs - 1

    def next_report(self, iteration):
        """The first reported iteration at or after ``iteration`` (at most ``epochs - 1``)."""
        every = self.print_every
        return min(-(-iteration // every) * every, self.epochs - 1)

    def blend_weights(self, count):
        """The weight of each of ``count`` style images, summing to 1."""
        if self.style_blend_weights is None:
            return [1.0 / count] * count
        weights = self.style_blend_weights
        if len(weights) != count:
            raise NSTError(f"style_blend_weights has {len(weights)} weights for {count} style images")
        return [w / sum(weights) for w in weights]


def _checked_steps(steps):
    """``learning_rate_steps`` as a tuple of (iteration, rate), iterations increasing from 1; NSTError otherwise."""
    try:
        pairs = tuple((iteration, rate) for iteration, rate in steps)
    except (TypeError, ValueError):
        raise NSTError(f"learning_rate_steps must be (iteration, rate) pairs; got {steps!r:.80}") from None
    previous = 0
    for iteration, rate in pairs:
        check_whole("learning_rate_steps iteration", iteration, previous + 1)
        _check_number(f"learning rate from iteration {iteration}", rate, positive=True)
        previous = iteration
    return tuple((int(iteration), float(rate)) for iteration, rate in pairs)


def _checked_blend_weights(given):
    """``given`` as a tuple of finite weights (float64), at least one positive, of a finite sum; NSTError otherwise."""
    try:
        weights = tuple(given)
    except TypeError:
        raise NSTError(f"style_blend_weights must be a sequence of numbers; got {given!r}") from None
    for weight in weights:
        _check_number("style blend weight", weight, ratio=True)
    if weights and sum(weights) == math.inf:
        # 1e308 + 1e308 is inf, and each weight divided by it 0: the styles would silently vanish.
        raise NSTError(
            "style_blend_weights: their sum is too large to compute; give the same ratios in smaller weights"
        )
    if not weights or sum(weights) <= 0:
        raise NSTError(f"style_blend_weights must hold at least one positive weight; got {weights!r}")
    return weights


def _checked_range(name, bounds):
    """``bounds`` as a (low, high) pair of finite floats with low < high, or None; NSTError otherwise."""
    if bounds is None:
        return None
    try:
        low, high = bounds
    except (TypeError, ValueError):
        raise NSTError(f"{name} must be a (low, high) pair; got {bounds!r:.80}") from None
    low, high = (check_finite(f"{name} bound", value) for value in (low, high))
    if not low < high:
        raise NSTError(f"{name} must have its low bound under its high one; got {low!r}:{high!r}")
    return low, high


def check_seed(seed):
    """``seed`` as a Python int (NumPy integers accepted), or None; NSTError otherwise."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise NSTError(f"seed must be a non-negative whole number; got {seed!r}")
    return int(seed)


def _check_number(name, value, positive=False, ratio=False):
    """Refuses ``value`` unless a finite number float32 holds (float64 for a ``ratio``), at least 0 (above 0 if
    ``positive``)."""
    number = check_finite(name, value, float32=not ratio)
    if number < 0 or (positive and number == 0):
        raise NSTError(f"{name} must be {'positive' if positive else 'zero or more'}; got {value!r}")
