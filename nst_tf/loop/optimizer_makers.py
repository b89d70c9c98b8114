"""Each optimizer's TensorFlow object, by name: ``MAKERS`` and ``make_optimizer`` (rules: ``plan.optimizers``)."""

from ..tensors.quiet import tensorflow as tf  # without its start-up lines

from ..plan.optimizers import get_optimizer
from .lbfgs import LBFGS

#: Optimizer name -> ``make(config)``, the optimizer with the config's settings.
MAKERS = {
    "adam": lambda config: tf.keras.optimizers.Adam(
        learning_rate=learning_rate(config),
        beta_1=config.adam_beta_1,
        beta_2=config.adam_beta_2,
        epsilon=config.adam_epsilon,
    ),
    "lbfgs": lambda config: LBFGS(history_size=config.lbfgs_history),
}


def make_optimizer(config):
    """The optimizer ``config.optimizer`` names, with the config's settings; ``NSTError`` for another name."""
    return MAKERS[get_optimizer(config.optimizer).name](config)


def learning_rate(config):
    """Adam's learning rate: ``config.learning_rate``, or with ``config.learning_rate_steps`` a schedule: a step
    ``(i, rate)`` makes iterations ``i, i+1, ...`` (0-based) use ``rate`` (Keras' ``PiecewiseConstantDecay`` on the
    optimizer's step count, ``i`` while iteration ``i`` is applied)."""
    if not config.learning_rate_steps:
        return config.learning_rate
    boundaries = [iteration - 1 for iteration, _ in config.learning_rate_steps]
    values = [config.learning_rate] + [rate for _, rate in config.learning_rate_steps]
    return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
