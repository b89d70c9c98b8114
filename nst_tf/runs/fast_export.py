"""A fast style model exported for serving: ``export_fast_model`` writes a TensorFlow SavedModel and a TensorFlow
Lite file of its network, for programs that run TensorFlow or TensorFlow Lite without nst_tf.

Both take and give float32 RGB pixels in [0, 255], NHWC, of any batch, height and width (height and width of at
least 8)::

    saved_model/   serving_default: images (B, H, W, 3) -> {"stylized": (B, H, W, 3)}, with the chosen style;
                   blend (models of several styles): images, style_weights (B, styles) -> {"stylized": ...}
    model.tflite   the same signatures; its inputs' height and width are dynamic (-1 in the shape signature):
                   a signature runner resizes them to each call's images

nst_tf itself never loads either: it stylizes from ``fast_model.json`` and ``weights.weights.h5``
(``runs.fast_models``), because loading a SavedModel runs its graph.
"""

import dataclasses
import logging
import os
import shutil
import tempfile

from ..ground.errors import NSTError, quoted
from ..plan.fast_model import SAVED_MODEL_DIR, TFLITE_FILE, FastModelFolder
from ..tensors.quiet import tensorflow as tf
from ..tensors.quiet import descriptor_2_hidden, wants_log_lines

#: The signatures' names, and their inputs' and output's.
SERVING = "serving_default"
BLEND = "blend"
IMAGES = "images"
STYLE_WEIGHTS = "style_weights"
STYLIZED = "stylized"


@dataclasses.dataclass(frozen=True)
class Export:
    """What ``export_fast_model`` wrote: the ``saved_model`` folder, the ``tflite`` file, the ``signatures``'
    names and the ``style_weights`` (one per style, summing to 1) that ``serving_default`` applies."""

    saved_model: str
    tflite: str
    signatures: tuple
    style_weights: tuple


def export_fast_model(model, folder_path, style_weights=None):
    """Writes ``model`` (a ``FastModel``) as ``<folder_path>/saved_model/`` and ``<folder_path>/model.tflite``
    (see the module for their signatures); returns an ``Export``.

    ``style_weights``: the style ``serving_default`` applies: a style's name, or one weight per style (at least 0,
    not all 0; normalized to sum 1); None for the first style. Both are built in a temporary folder inside
    ``folder_path`` (created if missing) and moved into place only once both are complete; a previous export is
    then replaced, a half-written one never seen.

    Raises:
        NSTError: ``style_weights`` are not the model's, ``folder_path`` is not a folder, or ``saved_model`` or
            ``model.tflite`` in it is something other than an export's (a file, or a folder without
            ``saved_model.pb``).
    """
    spec = model.spec
    weights = model.style_weights(style_weights) or tuple(float(i == 0) for i in range(spec.styles))
    folder = FastModelFolder(folder_path)
    _check_replaceable(folder)
    os.makedirs(folder.path, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".nst_tf-export-", dir=folder.path)
    try:
        saved_model = os.path.join(staging, SAVED_MODEL_DIR)
        signatures = _write_saved_model(model.net, spec, weights, saved_model)
        tflite = os.path.join(staging, TFLITE_FILE)
        with open(tflite, "wb") as file:
            file.write(_tflite_bytes(saved_model, signatures))
        _replace_folder(saved_model, folder.saved_model, os.path.join(staging, "previous"))
        os.replace(tflite, folder.tflite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Export(folder.saved_model, folder.tflite, signatures, weights)


def _check_replaceable(folder):
    """Raises ``NSTError`` where the export would replace something that is not an earlier export."""
    where = f"export to {quoted(folder.path)}"
    if os.path.lexists(folder.path) and not os.path.isdir(folder.path):
        raise NSTError(f"{where}: it is not a folder; name a folder (the model's own, say)")
    if os.path.lexists(folder.saved_model) and not os.path.isfile(os.path.join(folder.saved_model, "saved_model.pb")):
        raise NSTError(f"{where}: {SAVED_MODEL_DIR} there is not a SavedModel; move it away or export elsewhere")
    if os.path.lexists(folder.tflite) and (os.path.islink(folder.tflite) or not os.path.isfile(folder.tflite)):
        raise NSTError(f"{where}: {TFLITE_FILE} there is not a regular file; move it away or export elsewhere")


def _write_saved_model(net, spec, weights, path):
    """Writes ``net``'s SavedModel to ``path``; the signatures' names. Keras' ``ExportArchive`` tracks the
    variables so that TensorFlow Lite's converter can freeze them into constants."""
    default = tf.constant([weights], tf.float32)
    images = tf.TensorSpec([None, None, None, 3], tf.float32, name=IMAGES)

    def serve(images):
        batch_weights = tf.tile(default, [tf.shape(images)[0], 1])
        return {STYLIZED: net([images, batch_weights], training=False)}

    def blend(images, style_weights):
        return {STYLIZED: net([images, style_weights], training=False)}

    archive = tf.keras.export.ExportArchive()
    archive.track(net)
    archive.add_endpoint(SERVING, serve, input_signature=[images])
    signatures = (SERVING,)
    if spec.styles > 1:
        mix = tf.TensorSpec([None, spec.styles], tf.float32, name=STYLE_WEIGHTS)
        archive.add_endpoint(BLEND, blend, input_signature=[images, mix])
        signatures += (BLEND,)
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))  # its INFO line names the temporary folder: the library is quiet
    try:
        archive.write_out(path, verbose=False)
    finally:
        logger.setLevel(level)
    return signatures


def _tflite_bytes(saved_model, signatures):
    """The TensorFlow Lite flat buffer of ``signatures`` of the SavedModel at ``saved_model``: built-in operations
    only, variables frozen into constants (resource variables off: kept, they would read uninitialized)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model, signature_keys=list(signatures))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.experimental_enable_resource_variables = False
    return _without_log_lines(converter.convert)


def _without_log_lines(function):
    """``function()`` with TensorFlow's C++ lines hidden unless ``TF_CPP_MIN_LOG_LEVEL`` asks for them: the
    converter logs an error-level line about the graph's attributes on every conversion that succeeds, and says
    what went wrong in its exception when one fails."""
    if wants_log_lines():
        return function()
    with descriptor_2_hidden():
        return function()


def _replace_folder(new, target, previous):
    """Moves folder ``new`` to ``target``, an earlier ``target`` first moved to ``previous`` (both on the same
    file system) and moved back if the move fails. A folder cannot be renamed over a non-empty one, hence two
    renames; ``target`` is missing only between them."""
    had = os.path.lexists(target)
    if had:
        os.rename(target, previous)
    try:
        os.rename(new, target)
    except BaseException:
        if had:
            os.rename(previous, target)
        raise
