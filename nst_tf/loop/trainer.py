"""The training loop of a fast style network: ``Trainer`` runs Adam steps on batches of content images under a
``tf.distribute.Strategy`` and yields a ``TrainProgress`` after each.

The loss of a step is the mean over the global batch of each image's total cost, ``sum_b J_b / B``: each device
sums its own images' costs and divides by the global B, and the strategy sums the devices' gradients, so one
device and several take the same step (up to float32 rounding). The step is traced once.
"""

import dataclasses

import numpy as np

from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError


@dataclasses.dataclass(frozen=True)
class TrainProgress:
    """After the step of ``step`` (1-based: steps done): ``costs``, the batch's mean costs by name
    (``{"total": J, "content": ..., "style": ..., "tv": ...}``, floats); ``style``, the style it trained."""

    step: int
    costs: dict
    style: int


class NonFiniteLoss(NSTError):
    """The total cost of a step became NaN or infinite; the network's weights are those after that step."""


def style_of_step(seed, step, styles):
    """The style (0 .. styles - 1) a step trains: drawn from (seed, step) alone, so a resumed run trains the
    styles the unbroken run did (Dumoulin et al. 2017 train one style per batch)."""
    if styles == 1:
        return 0
    return int(np.random.default_rng([seed, step]).integers(styles))


class Trainer:
    """Adam steps of ``net`` (``build_transform_net``'s, with ``styles`` styles) down ``objective``
    (``TrainingCost``) on ``batches`` (a dataset of (B, H, W, 3) float32 pixel batches, B the global batch).

    Build ``net``, ``objective`` and ``optimizer`` under ``strategy.scope()``. ``step``: a tf.Variable (int64) of
    the steps done, advanced by each step (checkpointed with the net and the optimizer).
    """

    def __init__(self, net, objective, optimizer, step, batch_size, seed, strategy=None):
        self.net, self.objective, self.optimizer, self.step = net, objective, optimizer, step
        self.strategy = strategy or tf.distribute.get_strategy()
        self.batch_size, self.seed, self.styles = batch_size, seed, objective.styles
        replicas = self.strategy.num_replicas_in_sync
        if batch_size % replicas:
            raise NSTError(f"batch_size {batch_size} does not split over {replicas} devices; give a multiple of it")
        self._traced = tf.function(self._distributed_step)

    def _replica_step(self, contents, style):
        local = tf.shape(contents)[0]
        weights = tf.tile(tf.one_hot(style, self.styles)[None], [local, 1])
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            generated = self.net([contents, weights], training=True)
            costs = self.objective.costs(generated, contents, weights)
            loss = tf.reduce_sum(costs["total"]) / float(self.batch_size)
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return {name: tf.reduce_sum(value) / float(self.batch_size) for name, value in costs.items()}

    def _distributed_step(self, contents, style):
        sums = self.strategy.run(self._replica_step, args=(contents, style))
        self.step.assign_add(1)
        return {name: self.strategy.reduce("SUM", value, axis=None) for name, value in sums.items()}

    def run(self, batches, iterations):
        """Steps from ``step`` + 1 to ``iterations``, one batch of ``batches`` (an iterator or a distributed
        dataset's, as many batches as steps left) each; yields each step's ``TrainProgress``. ``NSTError`` when
        the batches end first; ``NonFiniteLoss`` when the total cost is not finite (a learning rate too high)."""
        if not isinstance(batches, tf.distribute.DistributedIterator) and self.strategy.num_replicas_in_sync > 1:
            batches = iter(self.strategy.experimental_distribute_dataset(batches))
        batches = iter(batches)
        while int(self.step.numpy()) < iterations:
            done = int(self.step.numpy())
            try:
                contents = next(batches)
            except StopIteration:
                raise NSTError(f"the content images ran out after {done} steps of {iterations}") from None
            style = style_of_step(self.seed, done, self.styles)
            costs = {name: float(value) for name, value in self._traced(contents, tf.constant(style)).items()}
            if not np.isfinite(costs["total"]):
                raise NonFiniteLoss(
                    f"the total cost became {costs['total']} at step {done + 1}; lower --learning_rate or the cost "
                    "weights and train again"
                )
            yield TrainProgress(done + 1, costs, style)
