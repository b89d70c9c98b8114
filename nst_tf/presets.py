"""Whole pipelines by name: the course's two editions and the Keras L-BFGS variant.

A ``Preset`` bundles everything one pipeline fixes: the weights file and its
pooling, how images are sized and normalized, the hyperparameters
(``StyleTransferConfig``), and how the command reports (its printed line and
its numbered image names). ``python -m nst_tf --preset NAME`` starts from a
preset's values, and any option given as well overrides them; in the library::

    preset = nst_tf.presets.PRESETS["second_edition"]
    model = preset.load_model()                      # Keras' notop .h5, max pooling
    content = preset.load_image("images/content.jpg")
    style = preset.load_image("images/style.jpg")
    for progress in preset.stylize(model, content, style): ...

Where nst_tf deliberately differs from a pipeline, its ``differences`` say so.
"""

from dataclasses import dataclass, field

from .config import CONFIG, KERAS_VGG_MODEL, StyleTransferConfig
from .errors import NSTError
from .images import ImageSize, load_image, reshape_and_normalize_image


@dataclass(frozen=True)
class Preset:
    """One named pipeline; see the module docstring.

    ``report_line`` and ``report_image`` are format strings with ``{i}`` (the
    iteration), ``{total}``, ``{content}`` and ``{style}`` (the costs): what the
    command prints and which file it saves at each report.
    """

    name: str
    summary: str
    config: StyleTransferConfig = StyleTransferConfig()
    size: ImageSize = ImageSize()
    model: str = CONFIG.VGG_MODEL
    pooling: str = "avg"
    report_line: str = "Iteration {i} :\ntotal cost = {total:g}\ncontent cost = {content:g}\nstyle cost = {style:g}\n"
    report_image: str = "{i}.png"
    differences: tuple = field(default=())

    def load_model(self, path=None, dtype=None):
        """The ``VGG19`` of ``path`` (default: this preset's weights file) with this preset's pooling."""
        from .precision import compute_dtype
        from .networks.vgg19_module import load_vgg_model

        dtype = compute_dtype(self.config.precision) if dtype is None else dtype
        return load_vgg_model(self.model if path is None else path, dtype=dtype, pooling=self.pooling)

    def load_image(self, path, size=None):
        """The image at ``path``, sized and normalized as this preset does: (1, h, w, 3)."""
        size = self.size if size is None else size
        pixels = load_image(path, size.width, size.height, size.max_size, size.fit)
        return reshape_and_normalize_image(pixels, self.config.normalization)

    def stylize(self, model, content_image, style_image, initial_image=None):
        """``nst_tf.stylize`` with this preset's hyperparameters."""
        from .optimize import stylize

        return stylize(model, content_image, style_image, self.config, initial_image)


_COURSE_STYLE_LAYERS = tuple((f"conv{block}_1", 0.2) for block in range(1, 6))

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
            "the Keras L-BFGS variant (seed 001): Keras' notop .h5, max pooling, 670x670 stretched, no content "
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
    )
}


def preset(name):
    """The ``Preset`` called ``name`` (one of ``PRESETS``).

    Raises:
        NSTError: ``name`` is not one of ``PRESETS``.
    """
    if name not in PRESETS:
        raise NSTError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}")
    return PRESETS[name]
