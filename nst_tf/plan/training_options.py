"""The options of training a fast style model (``TrainConfig``), free of TensorFlow, so that the training
command checks them before loading it. The objective's own settings (alpha, beta, tv_weight, layers, network,
normalization) stay ``StyleTransferConfig``'s: a trained network answers to the same costs as an optimized image.
"""

import json
import os
from dataclasses import dataclass

from ..ground.checks import check_choice, check_finite, check_whole
from ..ground.errors import NSTError, quoted
from ..ground.files import NotRegularFile, open_regular
from ..ground.fields import option
from .networks.vgg19 import MIN_IMAGE_SIZE  # the crops go through five poolings
from .fast_model import CHECKPOINTS_DIR, MAX_BLOCKS, MAX_WIDTH, UPSAMPLINGS, TransformSpec

#: The largest crop side and batch: a training step holds the batch's activations of the whole network.
MAX_IMAGE_SIZE = 4096
MAX_BATCH_SIZE = 1024
#: The most steps a run counts (the step is a 64-bit counter, the data pipeline's positions too).
MAX_ITERATIONS = 10**9


@dataclass(frozen=True)
class TrainConfig:
    """How a fast style model is trained (Johnson et al. 2016's recipe, its sizes scaled for a CPU): each step
    takes ``batch_size`` content crops of ``image_size`` pixels a side, stylizes them and follows Adam down the
    mean objective of the batch. ``NSTError`` for a value out of its range or choices."""

    iterations: int = option(2000, "training steps in all (a resumed run goes on to this many)", metavar="N")
    image_size: int = option(
        256, "side of the square content crops: each image resized to this shorter side, then cropped", metavar="PX"
    )
    batch_size: int = option(4, "content crops per step (over all devices)", metavar="B")
    learning_rate: float = option(1e-3, "Adam's learning rate (Johnson et al.'s)", metavar="X")
    seed: int = option(
        0,
        "seed of the network's initial weights, the order of the images, their crops and the style of each step: "
        "the same seed on the same machine gives the same run",
        metavar="S",
    )
    style_size: int | None = option(
        None, "the style images' shorter side in pixels (default: --image_size)", metavar="PX", type=int
    )
    checkpoint_every: int = option(
        500, "save a checkpoint every N steps (and on SIGTERM, Ctrl-C and at the end)", metavar="N"
    )
    log_every: int = option(50, "print the costs and write TensorBoard's scalars every N steps", metavar="N")
    sample_every: int = option(
        500, "with --log_dir: write sample images (held-out content images stylized) every N steps", metavar="N"
    )
    width: float = option(
        TransformSpec.width, f"the network's channels: Johnson's 32/64/128 times X (at most {MAX_WIDTH:g})", metavar="X"
    )
    blocks: int = option(TransformSpec.blocks, "residual blocks of the network", metavar="N")
    upsampling: str = option(
        TransformSpec.upsampling,
        "resize (nearest-neighbour doubling then a convolution: no checkerboard) or transposed (Johnson's)",
        choices=UPSAMPLINGS,
    )

    def __post_init__(self):
        check_whole("iterations", self.iterations, 1, MAX_ITERATIONS)
        check_whole("image_size", self.image_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        check_whole("batch_size", self.batch_size, 1, MAX_BATCH_SIZE)
        if check_finite("learning_rate", self.learning_rate) <= 0:
            raise NSTError(f"learning_rate must be above 0; got {self.learning_rate!r}")
        check_whole("seed", self.seed, 0, 2**31 - 1)
        if self.style_size is not None:
            check_whole("style_size", self.style_size, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
        for name in ("checkpoint_every", "log_every", "sample_every"):
            check_whole(name, getattr(self, name), 1, MAX_ITERATIONS)
        check_whole("blocks", self.blocks, 0, MAX_BLOCKS)
        check_choice("upsampling", self.upsampling, UPSAMPLINGS)
        self.spec(1)  # the network's own checks (width)

    def spec(self, styles):
        """The ``TransformSpec`` of a network of ``styles`` styles with these options."""
        return TransformSpec(self.width, self.blocks, self.upsampling, styles)

    @property
    def style_side(self):
        """The style images' shorter side: ``style_size``, else ``image_size``."""
        return self.image_size if self.style_size is None else self.style_size

    def resume_key(self):
        """The options a resumed run must share with the run it resumes (all but the counts and the reports)."""
        return {
            "image_size": self.image_size,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "seed": self.seed,
            "style_size": self.style_side,
            "network": self.spec(1).to_json() | {"styles": None},
        }


SETTINGS_FILE = "training.json"
#: The objective's fields a resumed run must share (``StyleTransferConfig``'s).
OBJECTIVE_FIELDS = (
    "alpha", "beta", "tv_weight", "tv_form", "content_layer", "style_layers", "network", "normalization",
    "style_normalizer", "content_normalizer",
)  # fmt: skip


def style_names(paths):
    """The styles' names in the model: each file's name, ``-2``, ``-3``, ... added to a repeated one."""
    names = []
    for path in paths:
        name, count = os.path.basename(path), 1
        while (name if count == 1 else f"{name}-{count}") in names:
            count += 1
        names.append(name if count == 1 else f"{name}-{count}")
    return tuple(names)


def training_settings(options, config, style_paths, pooling):
    """What a resumed run must share with the run it resumes, as JSON values."""
    objective = {name: getattr(config, name) for name in OBJECTIVE_FIELDS}
    key = options.resume_key() | {"styles": list(style_names(style_paths)), "pooling": pooling, "objective": objective}
    return json.loads(json.dumps(key))


def resumable(output_dir, settings):
    """Whether ``output_dir`` holds checkpoints to resume (False for a folder to start in: missing or empty).

    Raises:
        NSTError: in one line, for a path that is not a folder, a folder holding other files, or checkpoints of
            other settings (naming the first that differs).
    """
    shown = f"--output_dir {quoted(output_dir)}"
    if not os.path.lexists(output_dir):
        return False
    if not os.path.isdir(output_dir):
        raise NSTError(f"{shown} exists and is not a folder; name a new folder")
    saved_path = os.path.join(output_dir, CHECKPOINTS_DIR, SETTINGS_FILE)
    if not os.path.lexists(saved_path):
        if os.listdir(output_dir):
            raise NSTError(f"{shown} holds files of its own and no training's checkpoints; name a new folder")
        return False
    try:
        with open_regular(saved_path) as file:
            saved = json.loads(file.read(1 << 20).decode("utf-8"))
    except (NotRegularFile, OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise NSTError(f"{shown}: its {CHECKPOINTS_DIR}/{SETTINGS_FILE} does not read ({error}); name a new folder")
    differing = [name for name in settings if not isinstance(saved, dict) or saved.get(name) != settings[name]]
    if differing:
        raise NSTError(
            f"{shown} holds the checkpoints of a training with other {differing[0]}; resume it with the same "
            "options, or name a new folder"
        )
    return True
