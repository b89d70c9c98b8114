"""The optimizers a run can use, by name, and what each supports: ``OPTIMIZERS`` (no TensorFlow).

The checks, the memory model and the loop read its rules here; ``nst_tf.loop.optimizer_makers`` makes its object.
"""

from dataclasses import dataclass

from ..ground.errors import NSTError


@dataclass(frozen=True)
class Optimizer:
    """What an optimizer supports and needs. ``name``: its ``--optimizer`` name; ``title``: how messages name it;
    ``batches``: whether it takes a batch of images; ``schedules``: whether it takes a learning rate and its steps;
    ``averages``: whether its iterates may be averaged (``StyleTransferConfig.average``) and its state carried to
    the next size of a coarse-to-fine run (``carry_state``); ``history_rows`` per
    curvature pair kept and ``fixed_rows``: float32 image-sized rows of state beyond the memory model's image-sized
    figures; ``why_no_batches``: the refusal's reason."""

    name: str
    title: str
    batches: bool
    schedules: bool
    averages: bool = False
    history_rows: int = 0
    fixed_rows: int = 0
    why_no_batches: str = ""

    def state_bytes(self, height, width, history):
        """Bytes of its state for a (height, width) RGB image keeping ``history`` curvature pairs."""
        rows = self.history_rows * history + self.fixed_rows if self.history_rows else 0
        return rows * 3 * height * width * 4

    def check_batches(self, what):
        """Raises ``NSTError`` naming ``what`` (the option asking for a batch) unless it takes batches."""
        if not self.batches:
            raise NSTError(f"{what}: {self.why_no_batches}; batches need --optimizer adam")

    def check_schedule(self, what):
        """Raises ``NSTError`` naming ``what`` unless it takes a learning rate schedule."""
        if not self.schedules:
            raise NSTError(f"{what}: only Adam has a learning rate ({self.title} searches its step length)")

    def check_averaging(self, what):
        """Raises ``NSTError`` naming ``what`` unless its iterates may be averaged."""
        if not self.averages:
            raise NSTError(f"{what}: only Adam's iterates are averaged ({self.title} searches along each direction)")

    def check_carry(self, what):
        """Raises ``NSTError`` naming ``what`` unless its state may be carried to the next size."""
        if not self.averages:
            raise NSTError(f"{what}: only Adam's moments are carried to the next size ({self.title} starts afresh)")


#: Optimizer name -> what it supports; the first is the default.
OPTIMIZERS = {
    "adam": Optimizer("adam", "Adam", batches=True, schedules=True, averages=True),
    "lbfgs": Optimizer(
        "lbfgs",
        "L-BFGS",
        batches=False,
        schedules=False,
        history_rows=2,  # each pair: a step and a gradient difference
        fixed_rows=4,  # the gradient, the direction, the line search's point and its gradient
        why_no_batches="L-BFGS keeps one curvature history per run",
    ),
}


def get_optimizer(name):
    """The ``Optimizer`` called ``name``; ``NSTError`` naming the known ones for any other."""
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise NSTError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {name!r:.80}")
    return OPTIMIZERS[name]
