"""What every job builds before it runs, in one start-up sequence: ``start_up``.

TensorFlow is imported here, by ``import_tensorflow_quietly``, and not
before: a job refuses bad input without it. Then signals are deferred (the
job stops where it can, ``signals.py``), the precision warnings are written,
the network is built from the weights read at setup, and the objective
factory is made; the seeded run's op determinism is the ``Started``'s
``deterministic()`` context. The one-image, many-image and video jobs and the
Ray engine's workers all start this way.
"""

import contextlib
import dataclasses
import os
import sys
import tempfile

from ...ground.statuses import PROG


def import_tensorflow_quietly(err):
    """Imports TensorFlow and starts its runtime with their log lines (file descriptor 2) discarded.

    TensorFlow's C++ start-up lines (oneDNN, CUDA probing) ignore
    TF_CPP_MIN_LOG_LEVEL and come at import and at the first operation, so
    the descriptor itself is pointed at a temporary file while both happen;
    if that fails, what TensorFlow wrote is written to ``err`` (not when a
    signal interrupts it: then the job stops with its own line).

    Args:
        err: the stream for TensorFlow's lines when the import fails.

    Returns:
        The ``tensorflow`` module.

    Raises:
        Exception: whatever importing TensorFlow or its first operation raises (an ``ImportError``, say),
            re-raised after TensorFlow's lines are written to ``err``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.constant(0.0).numpy()
        except Exception:
            os.dup2(saved, 2)
            captured.seek(0)
            err.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tf


def warn_about_precision(config, err):
    """Writes a warning line to ``err`` for each precision note: bfloat16 emulated, XLA unavailable.

    Args:
        config: the run's ``StyleTransferConfig`` (``precision``, ``jit_compile``).
        err: the stream for the warnings.
    """
    from ...tensors.precision import emulation_note, jit_note

    for note in (emulation_note(config.precision), jit_note() if config.jit_compile else None):
        if note:
            err.write(f"{PROG}: warning: {note}\n")


def build_model(config, weights, pooling):
    """The network ``config.network`` with ``weights``, computing in ``config.precision``'s dtype.

    Args:
        config: the run's ``StyleTransferConfig``.
        weights: the weights ``read_network_weights`` gave.
        pooling: the pooling after each block, "avg" or "max".

    Returns:
        The built network (a ``VGG19`` for "vgg19").
    """
    from ...tensors.modules import build_network
    from ...tensors.precision import compute_dtype

    return build_network(config.network, weights, dtype=compute_dtype(config.precision), pooling=pooling)


def contain_determinism(tf, seed):
    """Op determinism for a seeded run, undone afterwards so an in-process caller keeps its own setting.

    Determinism is turned on by this call, and turned back off when the
    returned context exits if it was off before.

    Args:
        tf: the ``tensorflow`` module.
        seed: the run's seed; None leaves determinism as it is.

    Returns:
        A context manager.
    """
    if seed is None:
        return contextlib.nullcontext()
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()

    @contextlib.contextmanager
    def restore():
        """Turns determinism back off on exit if it was off before."""
        try:
            yield
        finally:
            if not was:
                tf_config.disable_op_determinism()

    return restore()


def objective_factory(tiles, err):
    """The ``make_objective`` of a ``CoarseToFine``: each size's cost, tiled where its plan says.

    Args:
        tiles: the ``TilePlan`` (or None) of each size, keyed by (height, width).
        err: the stream for a note on each size computed in tiles.

    Returns:
        ``objective(model, content, styles, config, size=(height, width), extra_terms=())``,
        returning a ``StyleCost`` or a ``TiledStyleCost``.
    """

    def objective(model, content, styles, config, size, extra_terms=()):
        """The cost of one size (plus ``extra_terms``), tiled if its plan says so; a note on ``err`` when it is."""
        from ...objective.tiled import TiledStyleCost, make_style_cost

        cost = make_style_cost(model, content, styles, config, plan=tiles[tuple(size)], extra_terms=extra_terms)
        if isinstance(cost, TiledStyleCost):
            (rows, cols), height, width = cost.tile_size, *content.shape[1:3]
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
    """A job's start, the same for every kind of job: TensorFlow, the network and the objective factory.

    Args:
        config: the run's ``StyleTransferConfig``.
        weights: the weights read at setup (``read_network_weights``); the network keeps its own copy.
        pooling: the pooling after each block.
        tiles: the ``TilePlan`` (or None) of each size, for ``objective_factory``.
        err: the stream for TensorFlow's lines when its import fails, warnings and notes.
        stop: the job's ``StopRequest``: deferred once TensorFlow runs, checked once the network is built
            (None in a Ray worker, whose driver handles signals).

    Returns:
        A ``Started``.
    """
    tf = import_tensorflow_quietly(err)
    if stop is not None:
        stop.defer()  # TensorFlow runs from here on: a signal is recorded and honoured where the job can stop
    warn_about_precision(config, err)
    model = build_model(config, weights, pooling)
    if stop is not None:
        stop.check()
    return Started(tf, model, objective_factory(tiles, err), config)
