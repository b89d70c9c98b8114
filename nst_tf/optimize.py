"""The optimization loop: the course's ``model_nn`` as a generator.

``StyleTransfer`` computes the content activation and the style Gram matrices
once, then optimizes a ``tf.Variable`` image with Adam. Its ``run()`` yields a
``Progress`` after every reported iteration; it never prints or writes files.

The steps between two reports run inside one ``tf.function`` loop (traced
once, with the number of steps as a tensor argument), so the host talks to
the device only when there is something to report.
"""

from dataclasses import dataclass
import functools

import numpy as np
import tensorflow as tf

from .config import StyleTransferConfig
from .colors import match_color_statistics, preserve_luminance
from .costs import compute_content_cost, layer_style_cost_from_gram, style_gram, total_cost, total_variation_cost
from .errors import NSTError, NonFiniteCostError
from .images import generate_noise_image, normalized_batch
from .lbfgs import LBFGS

#: TensorFlow dtype the network runs in, for each ``StyleTransferConfig.precision``.
COMPUTE_DTYPES = {"float32": tf.float32, "bf16": tf.bfloat16, "fp16": tf.float16}

#: TF1's AdamOptimizer, which the course used, defaults to epsilon 1e-8
#: (Keras's Adam to 1e-7). Beta values are the same in both.
ADAM_EPSILON = 1e-8


@dataclass(frozen=True)
class Progress:
    """One report of a run.

    ``total_cost``, ``content_cost``, ``style_cost`` and ``tv_cost`` are the
    costs of the image after the optimizer step of ``iteration`` (0-based),
    as the course prints them. ``image`` is that image, normalized, shape
    (1, H, W, 3); with ``preserve_colors="luminance"`` it carries the
    content's chrominance.
    """

    iteration: int
    total_cost: float
    content_cost: float
    style_cost: float
    image: np.ndarray
    tv_cost: float = 0.0


def make_cost_function(model, content_layer, content_target, style_layers, style_targets, config):
    """Builds ``costs(image) -> (J, J_content, J_style, J_tv)`` for one run.

    Everything the function needs is passed in: the model, the content
    activation, the style targets (a list of (blend weight, {layer name:
    Gram matrix}) pairs, one per style image) and the config's weights, so
    it captures no globals and can be traced once. ``J`` is
    ``total_cost(J_content, J_style, alpha, beta) + tv_weight * J_tv``.
    """
    layers = list(dict.fromkeys([content_layer] + [name for name, _ in style_layers]))

    def costs(image):
        # Costs are computed in float32 whatever the network's dtype: Gram
        # sums overflow float16 and lose digits in bfloat16.
        activations = {name: tf.cast(a, tf.float32) for name, a in model(image, layers=layers).items()}
        J_content = compute_content_cost(content_target, activations[content_layer])
        J_style = tf.zeros([], tf.float32)
        for blend, grams in style_targets:
            for name, weight in style_layers:
                J_style += blend * weight * layer_style_cost_from_gram(grams[name], activations[name])
        J = total_cost(J_content, J_style, config.alpha, config.beta)
        J_tv = tf.zeros([], tf.float32)
        if config.tv_weight:
            J_tv = total_variation_cost(image, config.tv_form)
            J += config.tv_weight * J_tv
        return J, J_content, J_style, J_tv

    return costs


def make_train_loop(costs, image, optimizer, last_finite, jit_compile=False):
    """Builds ``run_steps(n) -> steps_done``, a ``tf.function`` traced once.

    Each step evaluates ``costs(image)`` and applies one optimizer update to
    the ``image`` variable. Before each update the image is copied to
    ``last_finite``; a step whose total cost or gradient is NaN or infinite
    stops the loop without updating, so ``steps_done < n`` reports it.
    """

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)], jit_compile=jit_compile)
    def run_steps(n):
        done = tf.constant(0)
        for _ in tf.range(n):
            with tf.GradientTape() as tape:
                J = costs(image)[0]
            gradient = tape.gradient(J, image)
            if not (tf.math.is_finite(J) and tf.reduce_all(tf.math.is_finite(gradient))):
                break
            last_finite.assign(image)
            optimizer.apply_gradients([(gradient, image)])
            done += 1
        return done

    return run_steps


class StyleTransfer:
    """One style-transfer run: targets, the image variable, the optimizer.

    Args:
        model: a ``VGG19`` (or any callable with its ``(image, layers=...)``
            interface and, for reduced precision, ``astype``).
        content_image: normalized content image, shape (1, H, W, 3).
        style_image: normalized style image, shape (1, h, w, 3), or a list
            of them to blend (``config.style_blend_weights``); sizes may
            differ from the content's.
        config: a ``StyleTransferConfig``.
        initial_image: starting image, shape of ``content_image``; by
            default ``generate_noise_image(content_image, config.noise_ratio,
            config.seed)``.
    """

    def __init__(self, model, content_image, style_image, config=StyleTransferConfig(), initial_image=None):
        self.config = config
        content_image = normalized_batch(content_image, "content_image")
        styles = style_image if isinstance(style_image, (list, tuple)) else [style_image]
        styles = [normalized_batch(s, "style_image") for s in styles]
        blend = _blend_weights(config.style_blend_weights, len(styles))
        if config.preserve_colors == "histogram":
            styles = [match_color_statistics(s, content_image) for s in styles]
        self._content_image = content_image
        if initial_image is None:
            initial_image = generate_noise_image(content_image, config.noise_ratio, config.seed)
        initial_image = normalized_batch(initial_image, "initial_image")
        if initial_image.shape != content_image.shape:
            raise NSTError(
                f"initial_image has shape {initial_image.shape}; expected the content's {content_image.shape}"
            )
        if config.precision != "float32":
            model = model.astype(COMPUTE_DTYPES[config.precision])
        style_names = [name for name, _ in config.style_layers]
        content_target = tf.cast(model(content_image, layers=[config.content_layer])[config.content_layer], tf.float32)
        style_targets = []
        for weight, style in zip(blend, styles):
            activations = model(style, layers=style_names)
            grams = {name: style_gram(tf.cast(activations[name], tf.float32)) for name in style_names}
            style_targets.append((weight, grams))

        self.image = tf.Variable(initial_image, name="generated_image")
        self._last_finite = tf.Variable(initial_image, trainable=False, name="last_finite_image")
        if config.optimizer == "lbfgs":
            self.optimizer = LBFGS(history_size=config.lbfgs_history)
        else:
            self.optimizer = tf.keras.optimizers.Adam(learning_rate=config.learning_rate, epsilon=ADAM_EPSILON)
        # Building the optimizer's state now keeps variable creation out of
        # the traced loop.
        self.optimizer.build([self.image])
        costs = make_cost_function(model, config.content_layer, content_target, config.style_layers, style_targets, config)
        self._costs = tf.function(functools.partial(costs, self.image))
        self._run_steps = make_train_loop(
            costs, self.image, self.optimizer, self._last_finite, jit_compile=config.jit_compile
        )
        self.iteration = 0

    def current_image(self):
        """The generated image now, normalized, shape (1, H, W, 3).

        With ``preserve_colors="luminance"`` it carries the content's chrominance.
        """
        return self._presentable(self.image.numpy())

    def _presentable(self, image):
        if self.config.preserve_colors == "luminance":
            return preserve_luminance(image, self._content_image)
        return image

    def costs(self):
        """(total, content, style, total variation) costs of the current image, as floats."""
        return tuple(float(c) for c in self._costs())

    def run(self):
        """Runs the remaining iterations, yielding a ``Progress`` at each report.

        Reports come after iteration ``i`` when ``i % print_every == 0`` and
        after the last iteration. Raises ``NonFiniteCostError`` when the
        total cost becomes NaN or infinite; the image variable is then left
        as it was and the error carries the last image of finite cost.
        """
        epochs, every = self.config.epochs, self.config.print_every
        reports = sorted({i for i in range(0, epochs, every)} | {epochs - 1})
        for report in reports:
            if report < self.iteration:
                continue
            self.step(report - self.iteration + 1)
            J, J_content, J_style, J_tv = self.costs()
            if not np.isfinite(J):
                self._non_finite(report)
            self._last_finite.assign(self.image)
            yield Progress(report, J, J_content, J_style, self.current_image(), J_tv)

    def step(self, n=1):
        """Runs ``n`` iterations inside the traced loop, without reporting.

        Raises ``NonFiniteCostError`` if a step meets a NaN or infinite cost
        or gradient; the iterations before it are kept.
        """
        done = int(self._run_steps(tf.constant(n, tf.int32)))
        self.iteration += done
        if done < n:
            self._non_finite(self.iteration)

    def _non_finite(self, iteration):
        raise NonFiniteCostError(
            f"total cost became NaN or infinite at iteration {iteration}; "
            "try a smaller learning rate or smaller alpha/beta",
            iteration=iteration,
            last_finite_image=self._presentable(self._last_finite.numpy()),
        )


def _blend_weights(weights, count):
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise NSTError(f"style_blend_weights has {len(weights)} weights for {count} style images")
    return [w / sum(weights) for w in weights]


def stylize(model, content_image, style_image, config=StyleTransferConfig(), initial_image=None):
    """Generator form of ``StyleTransfer(...).run()``: yields ``Progress`` reports."""
    return StyleTransfer(model, content_image, style_image, config, initial_image).run()
