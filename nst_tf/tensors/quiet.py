"""TensorFlow imported without its C++ start-up lines: every module of nst_tf gets it from here
(``from ..tensors.quiet import tensorflow as tf``), so that ``import nst_tf`` and the first name that needs
TensorFlow, in a script or a notebook's kernel, print none of them.

Those lines (oneDNN, CUDA probing, ``absl::InitializeLog``) come at the import and at the first operation,
and most of them ignore ``TF_CPP_MIN_LOG_LEVEL``; they are written to file descriptor 2 directly, which a
Jupyter kernel forwards to the cell. A ``TF_CPP_MIN_LOG_LEVEL`` of 0 or 1 set before TensorFlow loads asks
for them: then nothing is hidden. Unset, ``import nst_tf`` has made it 2 (INFO and WARNING off, errors kept).
"""

import contextlib
import os
import sys
import tempfile

#: The ``tensorflow`` module once ``import_tensorflow_quietly`` has imported and started it.
_started = None


def wants_log_lines():
    """Whether ``TF_CPP_MIN_LOG_LEVEL`` asks for TensorFlow's INFO or WARNING lines (is set to 0 or 1)."""
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "").strip() in ("0", "1")


def import_tensorflow_quietly(err=None):
    """The ``tensorflow`` module, imported and started (one operation run) with file descriptor 2 sent to a
    temporary file meanwhile, unless ``wants_log_lines()``; once per process. An ``Exception`` from either is
    re-raised after TensorFlow's lines are written to ``err`` (default ``sys.stderr``)."""
    global _started
    if _started is None:
        _started = _start() if wants_log_lines() else _start_hidden(sys.stderr if err is None else err)
    return _started


def _start():
    """TensorFlow imported, and one operation run (the second batch of start-up lines comes with the first)."""
    import tensorflow as tf

    tf.constant(0.0).numpy()
    return tf


def _start_hidden(err):
    """``_start()`` with file descriptor 2 hidden (``descriptor_2_hidden``), its lines written to ``err`` if it
    fails."""
    lines = b""
    try:
        with descriptor_2_hidden() as captured:
            try:
                return _start()
            except Exception:
                captured.seek(0)
                lines = captured.read()
                raise
    except Exception:
        err.write(lines.decode(errors="replace"))  # file descriptor 2 restored by now
        raise


@contextlib.contextmanager
def descriptor_2_hidden():
    """File descriptor 2 sent to a temporary file while the block runs (TensorFlow's C++ lines go there
    directly, past ``sys.stderr``); yields that file, readable until the block ends. Other threads' writes to
    file descriptor 2 go there too meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def __getattr__(name):
    """``tensorflow``: the module, imported quietly on first use (``from .quiet import tensorflow as tf``)."""
    if name == "tensorflow":
        return import_tensorflow_quietly()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
