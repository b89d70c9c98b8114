"""What every job builds before it runs, in one start-up sequence (``start_up``): TensorFlow imported (not
before: bad input is refused without it), signals deferred, precision warnings written, the network built and
the objective factory made.
"""

import contextlib
import dataclasses

from ...ground.statuses import PROG
from ...tensors.quiet import import_tensorflow_quietly  # TensorFlow without its start-up lines


def warn_about_precision(config, err):
    """Writes to ``err`` a warning line for each of ``config``'s precision notes (bfloat16 emulated, no XLA)."""
    from ...tensors.precision import emulation_note, jit_note

    for note in (emulation_note(config.precision), jit_note() if config.jit_compile else None):
        if note:
            err.write(f"{PROG}: warning: {note}\n")


def build_model(config, weights, pooling):
    """The network ``config.network`` with ``weights`` (``read_network_weights``'s) and ``pooling``
    ("avg" or "max"), computing in ``config.precision``'s dtype."""
    from ...tensors.modules import build_network
    from ...tensors.precision import compute_dtype

    return build_network(config.network, weights, dtype=compute_dtype(config.precision), pooling=pooling)


def contain_determinism(tf, seed):
    """A context: op determinism on for a seeded run (now), back off on exit if it was off before; ``seed`` None
    leaves it as it is (an in-process caller keeps its own setting)."""
    if seed is None:
        return contextlib.nullcontext()
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()

    @contextlib.contextmanager
    def restore():
        try:
            yield
        finally:
            if not was:
                tf_config.disable_op_determinism()

    return restore()


def objective_factory(tiles, err):
    """A ``CoarseToFine``'s ``make_objective(model, content, styles, config, size, extra_terms=())``: each
    size's ``StyleCost``, tiled where ``tiles`` (its ``TilePlan`` or None, by (height, width)) says, with a
    note on ``err`` when it is."""

    def objective(model, content, styles, config, size, extra_terms=()):
        from ...objective.tiled import TiledStyleCost, make_style_cost

        cost = make_style_cost(model, content, styles, config, plan=tiles[tuple(size)], extra_terms=extra_terms)
        if isinstance(cost, TiledStyleCost):
            (rows, cols), height, width = cost.tile_size, *cost.content_image.shape[1:3]
            passes = "kept for the backward ones" if cost.keep_forward else "run again for the backward ones"
            err.write(
                f"{PROG}: note: {width}x{height} is computed in {len(cost.tiles)} tiles of {cols}x{rows} pixels "
                f"plus a {cost.margin}-pixel margin; forward passes {passes}\n"
            )
        return cost

    return objective


@dataclasses.dataclass(frozen=True)
class Started:
    """What ``start_up`` built: the ``tensorflow`` module, the network ``model`` and ``make_objective``
    (``objective_factory``'s), and the run's ``config``."""

    tf: object
    model: object
    make_objective: object
    config: object

    def deterministic(self):
        """Op determinism for the run when it is seeded, undone on exit (``contain_determinism``)."""
        return contain_determinism(self.tf, self.config.seed)


def start_up(config, weights, pooling, tiles, err, stop=None):
    """A job's ``Started``: TensorFlow, the network (``build_model``) and the objective factory
    (``objective_factory``); ``err``: TensorFlow's lines when its import fails, warnings and notes; ``stop``:
    the job's ``StopRequest``, deferred once TensorFlow runs and checked once the network is built (None in a
    Ray worker)."""
    tf = import_tensorflow_quietly(err)
    if stop is not None:
        stop.defer()  # TensorFlow runs from here on: a signal is recorded and honoured where the job can stop
        from ...tensors.precision import device_line

        err.write(f"{PROG}: running on {device_line(config.precision)}\n")
    warn_about_precision(config, err)
    model = build_model(config, weights, pooling)
    if stop is not None:
        stop.check()
    return Started(tf, model, objective_factory(tiles, err), config)
