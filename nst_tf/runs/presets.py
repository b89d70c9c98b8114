"""Whole pipelines by name: the course's two editions and the Keras L-BFGS variant.

A ``Preset`` bundles what one pipeline fixes: the weights file and its pooling, image sizing and normalization,
the hyperparameters and the command's reports. ``python -m nst_tf --preset NAME`` starts from its values (options
given override them); in the library, ``PRESETS["second_edition"].load_model()``, ``.load_image(path)`` and
``.stylize(model, content, style)``. Where nst_tf deliberately differs from a pipeline, ``differences`` says so.
"""

from dataclasses import dataclass, field

from ..ground.errors import NSTError
from ..plan.locations import find_weights
from ..plan.config import CONFIG, KERAS_VGG_MODEL, StyleTransferConfig
from ..plan.large_options import LargeImageOptions
from ..plan.networks.network_registry import get_network
from ..tensors.images import ImageSize, load_image, reshape_and_normalize_image
from ..plan.weights.reader_registry import read_network_weights

#: Where CS231n's presets expect torchvision's SqueezeNet 1.1 weights (``nst_tf.download --weights squeezenet``).
SQUEEZENET_MODEL = "pretrained-model/squeezenet1_1-b8a52dc0.pth"


@dataclass(frozen=True)
class Preset:
    """One named pipeline. ``report_line`` and ``report_image``, what the command prints and saves at each report,
    are format strings of ``{i}`` (the iteration) and the costs (``app.jobs.drive.report_text``)."""

    name: str
    summary: str
    config: StyleTransferConfig = StyleTransferConfig()
    size: ImageSize = ImageSize()
    model: str = CONFIG.VGG_MODEL
    pooling: str = "avg"
    report_line: str = "Iteration {i} :\ntotal cost = {total:g}\ncontent cost = {content:g}\nstyle cost = {style:g}\n"
    report_image: str = "{i}.png"
    differences: tuple = field(default=())
    large: LargeImageOptions = LargeImageOptions()
    content_image: str = CONFIG.CONTENT_IMAGE
    style_image: str = CONFIG.STYLE_IMAGE

    def load_model(self, path=None, dtype=None):
        """The network module of ``path`` (default: this preset's weights file, looked for as the command does:
        ``plan.locations.find_weights``) with this preset's pooling."""
        from ..tensors.precision import compute_dtype

        dtype = compute_dtype(self.config.precision) if dtype is None else dtype
        network = get_network(self.config.network)
        from ..tensors.modules import build_network  # imports TensorFlow: the command checks its input first

        weights = read_network_weights(network, find_weights(self.model) if path is None else path)
        return build_network(network, weights, dtype, self.pooling)

    def load_image(self, path, size=None):
        """The content image at ``path``, sized and normalized as this preset does: (1, h, w, 3)."""
        size = self.size if size is None else size
        if size.shorter_side is not None:
            return self._resized(path, size.shorter_side)
        pixels = load_image(path, size.width, size.height, size.max_size, size.fit)
        return reshape_and_normalize_image(pixels, self.config.normalization)

    def load_style_image(self, path):
        """The style image at ``path``, sized and normalized as this preset does: (1, h, w, 3)."""
        if self.large.style_size is not None:
            return self._resized(path, self.large.style_size)
        return self.load_image(path)

    def _resized(self, path, shorter_side):
        """The image at ``path`` with its own aspect ratio and ``shorter_side``, normalized."""
        from ..tensors.images import fit_image, read_image, shorter_side_size

        pixels = read_image(path)
        height, width = shorter_side_size(*pixels.shape[:2], shorter_side)
        return reshape_and_normalize_image(fit_image(pixels, width, height, "stretch"), self.config.normalization)

    def stylize(self, model, content_image, style_image, initial_image=None):
        """``nst_tf.stylize`` with this preset's hyperparameters."""
        from ..loop.optimize import stylize

        return stylize(model, content_image, style_image, self.config, initial_image)


_COURSE_STYLE_LAYERS = tuple((f"conv{block}_1", 0.2) for block in range(1, 6))

#: CS231n's runs: (name, style image, image size, style size, content weight, style weights at features
#: 1, 4, 6, 7, tv weight, start); feature inversion is Starry Night's run without style from a random start.
_CS231N_RUNS = (
    ("composition_vii", "composition_vii.jpg", 192, 512, 5e-2, (20000, 500, 12, 1), 5e-2, "content"),
    ("scream", "the_scream.jpg", 192, 224, 3e-2, (200000, 800, 12, 1), 2e-2, "content"),
    ("starry_night", "starry_night.jpg", 192, 192, 6e-2, (300000, 1000, 15, 3), 2e-2, "content"),
    ("feature_inversion", "starry_night.jpg", 192, 192, 6e-2, (0, 0, 0, 0), 2e-2, "uniform"),
)

_CS231N_DIFFERENCES = (
    "CS231n's PyTorch edition starts a new Adam at iteration 180 (its moments reset); nst_tf changes the rate "
    "and keeps the moments, as the assignment's TensorFlow edition does.",
    "The command decodes an image more than four times larger than its target reduced (JPEG's whole factors) "
    "before Pillow's bilinear resize, as torchvision's is (which resizes the full image, as Preset.load_image "
    "does); images are brought to at least 32 pixels a side.",
)


def _cs231n_preset(name, style, size, style_size, content_weight, style_weights, tv_weight, start):
    """The preset of one of CS231n's runs: its hyperparameters on SqueezeNet (features indices as the PyTorch
    edition numbers them)."""
    config = StyleTransferConfig(
        network="squeezenet",
        normalization="imagenet",
        epochs=200,
        print_every=100,
        learning_rate=3.0,
        learning_rate_steps=((180, 0.1),),
        adam_epsilon=1e-8,
        alpha=content_weight,
        beta=1.0,
        content_layer="3",
        style_layers=tuple(zip(("1", "4", "6", "7"), map(float, style_weights))),
        content_normalizer="none",
        style_normalizer="gram",
        tv_weight=tv_weight,
        clamp=(-1.5, 1.5),
        clamp_until=190,
        start=start,
    )
    summary = (
        f"CS231n's {name.replace('_', ' ').title()} run: torchvision's SqueezeNet 1.1, tubingen at {size} and the "
        f"style at {style_size} (shorter sides), content weight {content_weight:g}, style weights "
        f"{', '.join(map(str, style_weights))}, TV {tv_weight:g}, Adam 3.0 then 0.1 at 180, 200 iterations"
    )
    if start == "uniform":
        summary = "CS231n's feature inversion: Starry Night's settings with no style, from uniform noise"
    return Preset(
        f"cs231n_{name}",
        summary,
        config=config,
        size=ImageSize(shorter_side=size),
        large=LargeImageOptions(style_size=style_size),
        style_image=f"images/{style}",
        differences=_CS231N_DIFFERENCES,
        model=SQUEEZENET_MODEL,
        pooling="max",
        report_line="Iteration {i}: total {total:g} = content {content_loss:g} + style {style_loss:g} + tv {tv_loss:g}"
        "\n",
        content_image="images/tubingen.jpg",
    )


PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            "first_edition",
            "the course's first edition (the default): MatConvNet's .mat, average pooling, 400x300, RGB minus "
            "the ImageNet means, conv4_2, Adam(2.0), 200 iterations",
        ),
        Preset(
            "second_edition",
            "the course's second edition: Keras' notop .h5, max pooling, images stretched to 400x400, pixels in "
            "[0, 1] with no mean subtraction, block5_conv4, Adam(0.01), content plus noise, clipped, 2501 epochs",
            config=StyleTransferConfig(
                epochs=2501,
                print_every=250,
                learning_rate=0.01,
                adam_epsilon=1e-7,
                content_layer="conv5_4",
                style_layers=_COURSE_STYLE_LAYERS,
                noise_ratio=0.25,
                start="additive",
                clip=True,
                normalization="unit",
            ),
            size=ImageSize(400, 400, fit="stretch"),
            model=KERAS_VGG_MODEL,
            pooling="max",
            report_line="Epoch {i} \n",
            report_image="image_{i}.jpg",
            differences=(
                "The course draws the start's noise with tf.random.uniform; nst_tf with NumPy (same distribution, "
                "other numbers), so that --seed works the same way in every pipeline.",
            ),
        ),
        Preset(
            "keras_lbfgs",
            "the Keras L-BFGS variant: Keras' notop .h5, max pooling, 670x670 stretched, no content "
            "term, block1_conv2 ... block5_conv4 at weight 1 with the image-size Gram normaliser, total variation "
            "(dx^2+dy^2)^1.25 at 0.2, L-BFGS from the content image",
            config=StyleTransferConfig(
                epochs=1000,
                print_every=20,
                alpha=0.0,
                beta=1.0,
                content_layer="conv5_4",
                style_layers=tuple((name, 1.0) for name in ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")),
                noise_ratio=0.0,
                tv_weight=0.2,
                tv_form="power",
                optimizer="lbfgs",
                lbfgs_history=10,
                style_normalizer="image",
            ),
            size=ImageSize(670, 670, fit="stretch"),
            model=KERAS_VGG_MODEL,
            pooling="max",
            differences=(
                "The variant subtracts the blue mean from red and the red mean from blue before swapping to BGR "
                "(the means in the wrong channels); nst_tf subtracts each channel's own mean.",
                "The variant restarts SciPy's L-BFGS (m=10, at most 20 evaluations) 50 times, losing its history "
                "each time; nst_tf runs one L-BFGS with history 10 for 1000 evaluations, the same budget.",
            ),
        ),
        *(_cs231n_preset(*run) for run in _CS231N_RUNS),
        Preset(
            "fast",
            "the course's objective (its layers, alpha and beta, weights and images) by a shorter road: L-BFGS "
            "from the content image, coarse to fine at every size from the requested one down by halves to a longer "
            "side of 200 pixels (2 sizes at 400x300, 4 at 1600x1200), 30 iterations at each smaller size and 10 "
            "at the requested one; the precision auto chooses",
            config=StyleTransferConfig(
                epochs=10, optimizer="lbfgs", lbfgs_history=100, start="content", precision="auto"
            ),
            large=LargeImageOptions(min_scale=200, scale_epochs=30),
            differences=(
                "Reaches the cost the course's 200 Adam iterations reach in 0.11x their time at 400x300 and 0.07x "
                "at 1600x1200, the whole command in 0.17x and 0.12x (benchmarks/time_to_quality.py, measured on "
                "synthetic weights: to be confirmed with the real ones); the picture differs from the course's, "
                "which starts from noise.",
            ),
        ),
    )
}


def preset(name):
    """The ``Preset`` called ``name``; ``NSTError`` unless one of ``PRESETS``."""
    if name not in PRESETS:
        raise NSTError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name]
