"""The optimization loop: the course's ``model_nn`` as a generator.

``StyleTransfer(objective)`` holds the image ``tf.Variable``, the optimizer and the loop; ``run()``
yields a ``Progress`` after every reported iteration and never prints or writes. Steps run in one
``tf.function`` loop, traced once with the step count as a tensor, in calls of about
``slice_seconds``: the host talks to the device rarely, and Python, which sees Ctrl-C and signals
only between calls, gets control back about once a second.
"""

import dataclasses
import time

import numpy as np
from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NonFiniteCostError, NSTError
from ..objective.whole import StyleCost
from ..plan.config import StyleTransferConfig
from ..plan.optimizers import get_optimizer
from ..tensors.images import checked_float32_batch, start_image
from .optimizer_makers import make_optimizer
from .progress import Progress, Tick


class IterateAverage(tf.Module):
    """An exponential moving average of the iterates with ``decay``, bias-corrected: after t updates with
    images x_1 .. x_t, ``value()`` is sum_i (1 - d) d^(t-i) x_i / (1 - d^t) (the image itself before any)."""

    def __init__(self, image, decay, name="iterate_average"):
        super().__init__(name=name)
        self.decay = float(decay)
        self._image = image
        with self.name_scope:
            self._sum = tf.Variable(tf.zeros_like(image), trainable=False, name="weighted_sum")
            self._weight = tf.Variable(0.0, trainable=False, name="weight")  # 1 - d^t

    def update(self):
        """Takes the image as it is now into the average."""
        self._sum.assign(self.decay * self._sum + (1.0 - self.decay) * self._image)
        self._weight.assign(self.decay * self._weight + (1.0 - self.decay))

    def value(self):
        """The bias-corrected average, the image's shape; the image itself before the first update."""
        return tf.cond(self._weight > 0, lambda: self._sum / tf.maximum(self._weight, 1e-30), lambda: self._image + 0)

    def reset(self):
        self._sum.assign(tf.zeros_like(self._sum))
        self._weight.assign(0.0)


def make_train_loop(objective, image, optimizer, last_finite, steps_done, jit_compile=False, clamp=None, average=None):
    """Builds ``run_steps(n) -> steps_done_now``, a ``tf.function`` traced once.

    Each step clamps the image to ``clamp`` (``(low, high, until)``: before iterations below ``until``,
    every one when None; CS231n clamps before its steps), takes ``objective.value_and_gradient``,
    copies the image to ``last_finite``, applies one optimizer update, ``objective.constrain``s it,
    takes it into ``average`` (an ``IterateAverage``, or None) and counts it in ``steps_done``. A NaN or
    infinite total cost or gradient stops the loop before its update, so a return value below ``n``
    reports it.
    """

    def clamped():
        if clamp is None:
            return
        low, high, until = clamp
        if until is None:
            image.assign(tf.clip_by_value(image, low, high))
        elif steps_done < until:
            image.assign(tf.clip_by_value(image, low, high))

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)], jit_compile=jit_compile)
    def run_steps(n):
        done = tf.constant(0)
        for _ in tf.range(n):
            clamped()
            costs, gradient = objective.value_and_gradient(image)
            J = costs["total"]  # a vector of each image's, for a batch
            if not (tf.reduce_all(tf.math.is_finite(J)) and tf.reduce_all(tf.math.is_finite(gradient))):
                break
            last_finite.assign(image)
            optimizer.apply_gradients([(gradient, image)])
            objective.constrain(image)
            if average is not None:
                average.update()
            steps_done.assign_add(1)
            done += 1
        return done

    return run_steps


class StyleTransfer:
    """One style-transfer run: the image variable, the optimizer, the loop.

    Args:
        objective: a ``StyleCost`` (or an object with its interface: ``objective(image) -> {"total": J,
            term name: value}``, ``value_and_gradient``, ``constrain``, ``content_image``, ``config``, ``present``).
        config: a ``StyleTransferConfig`` for the loop; by default the objective's.
        initial_image: the start, the content's shape; by default ``start_image(content_image, config)``
            (the course's noise image unless ``config.start`` says otherwise).

    ``slice_seconds`` bounds the wall time of one traced call.
    """

    slice_seconds = 1.0

    def __init__(self, objective, config=None, initial_image=None):
        if not (callable(objective) and hasattr(objective, "content_image")):
            raise NSTError(
                f"objective must be a StyleCost (build one with StyleCost(model, content, style, config)); "
                f"got {type(objective).__name__}"
            )
        config = objective.config if config is None else config
        if not isinstance(config, StyleTransferConfig):
            raise NSTError(f"config must be a StyleTransferConfig; got {type(config).__name__}")
        # A batch objective (``BatchStyleCost``) optimizes B images at once, each with its own costs.
        self.batched = bool(getattr(objective, "batched", False))
        if self.batched:
            get_optimizer(config.optimizer).check_batches("a batch objective")
        self.objective = objective
        self.config = config
        initial_image = self._initial(initial_image)
        self.image = tf.Variable(initial_image, name="generated_image")
        self._last_finite = tf.Variable(initial_image, trainable=False, name="last_finite_image")
        # Counted inside the traced loop: right even when an interrupt comes between a call and the next line.
        self._steps_done = tf.Variable(0, trainable=False, name="steps_done")
        self.optimizer = make_optimizer(config)
        # Building the optimizer's state now keeps variable creation out of the traced loop.
        self.optimizer.build([self.image])
        # What restart() sets the optimizer back to: its scalars as they start (the step count, a
        # learning rate kept in a variable), and zeros for the image-sized state (moments, history).
        self._optimizer_start = [v.numpy() if v.shape.rank == 0 else None for v in self.optimizer.variables]
        self._costs = None  # traced on the first costs() call
        clamp = None if config.clamp is None else (*config.clamp, config.clamp_until)
        # With config.average, what the run reports and hands on is the average of its iterates.
        self._average = IterateAverage(self.image, config.average) if config.average else None
        self._run_steps = make_train_loop(
            objective,
            self.image,
            self.optimizer,
            self._last_finite,
            self._steps_done,
            config.jit_compile,
            clamp,
            self._average,
        )
        self._step_seconds = None

    def restart(self, initial_image=None, epochs=None):
        """Starts the run again from ``initial_image`` without retracing (for the next content image, after
        ``objective.retarget``): the image, its last finite copy, the step count and the optimizer's state are reset.

        Args:
            initial_image: the start, the content's shape; by default ``start_image``'s.
            epochs: this run's iterations, when they differ from the last run's (a video's first frame).

        Raises:
            NSTError: ``initial_image`` is not of the content's shape, or ``epochs`` not a positive whole number.
        """
        if epochs is not None:
            self.config = dataclasses.replace(self.config, epochs=epochs)
        initial_image = self._initial(initial_image)
        self.image.assign(initial_image)
        self._last_finite.assign(initial_image)
        self._steps_done.assign(0)
        if self._average is not None:
            self._average.reset()
        for variable, start in zip(self.optimizer.variables, self._optimizer_start):
            variable.assign(start if start is not None else tf.zeros_like(variable))

    def optimizer_state(self):
        """The optimizer's state now, as arrays in ``optimizer.variables``' order (``take_state``'s argument)."""
        return [variable.numpy() for variable in self.optimizer.variables]

    def take_state(self, state):
        """Continues from ``state`` (``optimizer_state()`` of a run of the same optimizer on a smaller or larger
        image) at this size: the image-sized state (Adam's moments) resized to this image (bilinear, which keeps
        second moments at least 0), the rest (the step count) as it is, as style-transfer-pytorch carries Adam
        across scales. ``NSTError`` for an optimizer whose state is not image-sized (L-BFGS's history)."""
        get_optimizer(self.config.optimizer).check_averaging("carrying the optimizer's state to the next scale")
        height, width = self.image.shape[1:3]
        for mine, theirs in zip(self.optimizer.variables, state):
            if mine.shape.rank == 4:
                mine.assign(tf.image.resize(theirs, (height, width), method="bilinear"))
            elif mine.shape == theirs.shape:
                mine.assign(theirs)

    def _initial(self, image):
        """``image`` (default ``start_image``) as a float32 batch; ``NSTError`` unless of the content's shape."""
        content = self.objective.content_image
        image = start_image(content, self.config) if image is None else image
        image = checked_float32_batch(image, "initial_image", batch=self.batched)
        if image.shape != content.shape:
            raise NSTError(f"initial_image has shape {image.shape}; expected the content's {content.shape}")
        return image

    @property
    def iteration(self):
        """Number of iterations done so far."""
        return int(self._steps_done.numpy())

    def result(self):
        """The run's image now, as optimized (not presented): the image variable's value, or with
        ``config.average`` the average of the iterates; a float32 array of the content's shape."""
        return self.image.numpy() if self._average is None else self._average.value().numpy()

    def current_image(self):
        """The generated image now (``result()``), as the objective presents it: normalized, shape (1, H, W, 3)."""
        return self.objective.present(self.result())

    def costs(self):
        """The current image's costs by name, ``{"total": J, term name: value}``, as floats (for a batch,
        arrays of each image's)."""
        if self._costs is None:
            # Traced once per run, explicitly (see step()).
            shown = self.image if self._average is None else self._average.value
            self._costs = tf.function(lambda: self.objective(shown() if callable(shown) else shown))
            self._costs = self._costs.get_concrete_function()
        if self.batched:
            return {name: np.asarray(c, np.float64) for name, c in self._costs().items()}  # each image's
        return {name: float(c) for name, c in self._costs().items()}

    def run(self, ticks=False):
        """Runs the remaining iterations, yielding a ``Progress`` after iteration ``i`` when ``config.is_report(i)``
        (with ``ticks``, also a ``Tick`` after each traced call between reports). ``NonFiniteCostError``, with the
        last image of finite cost, when the total cost becomes NaN or infinite."""
        config = self.config
        while self.iteration < config.epochs:
            report = config.next_report(self.iteration)
            while self.iteration <= report:
                self.step(self._slice(report + 1 - self.iteration))
                if ticks and self.iteration <= report:
                    yield Tick(self.iteration)
            costs = self.costs()
            if not np.all(np.isfinite(costs["total"])):
                self._raise_non_finite(report)
            self._last_finite.assign(self.image)
            yield Progress(report, costs, self.current_image())

    def _slice(self, remaining):
        if self._step_seconds is None:
            return 1
        return int(max(1, min(remaining, self.slice_seconds // self._step_seconds)))

    def step(self, n=1):
        """Runs ``n`` iterations in one traced call, without reporting; ``NonFiniteCostError`` if a step meets
        a NaN or infinite cost or gradient (the iterations before it are kept)."""
        first = self._run_steps.experimental_get_tracing_count() == 0
        if first:
            # Traced explicitly: traced by a call, each run's first call counts as a retrace, and TensorFlow warns
            # of "frequent retracing" after five short runs in a row (the sizes of a CoarseToFine run).
            self._run_steps.get_concrete_function()
        start = time.perf_counter()
        done = int(self._run_steps(tf.constant(n, tf.int32)))
        # The first call sets the traced loop up, so its time says nothing about a step.
        if done and not first:
            self._step_seconds = max((time.perf_counter() - start) / done, 1e-6)
        if done < n:
            self._raise_non_finite(self.iteration)

    def _raise_non_finite(self, iteration):
        raise NonFiniteCostError(
            f"total cost became NaN or infinite at iteration {iteration}; "
            "try a smaller learning rate or smaller alpha/beta",
            iteration=iteration,
            last_finite_image=self.objective.present(self._last_finite.numpy()),
        )


def stylize(model, content_image, style_image, config=StyleTransferConfig(), initial_image=None):
    """Generator form of ``StyleTransfer(StyleCost(model, content, style, config)).run()``."""
    return StyleTransfer(StyleCost(model, content_image, style_image, config), config, initial_image).run()
