"""nst_tf: the deeplearning.ai neural style transfer assignment as a TensorFlow 2 library.

The course's graded functions and helpers (``compute_content_cost`` ... ``total_cost``, ``CONFIG``,
``load_vgg_model``), the objective (``StyleCost``) and the loop (``StyleTransfer``, ``stylize``), plus what the
course leaves out: total variation, L-BFGS, colour preservation, several styles, large images
(``TiledStyleCost``, ``CoarseToFine``), Stanford CS231n's edition on ``SqueezeNet`` (``nst_tf.tensors.cs231n``) and
trained fast style models (``load_fast_model``, ``stylize_fast``).

Names are imported on first use, so that ``python -m nst_tf -h`` and input errors answer before TensorFlow loads.
TensorFlow then loads through ``nst_tf.tensors.quiet``, without its C++ start-up lines (unless
``TF_CPP_MIN_LOG_LEVEL`` is 0 or 1).
"""

import os as _os

__version__ = "0.1.0"

# TensorFlow's INFO and WARNING log lines off for whatever imports it after nst_tf (the user's own
# ``import tensorflow`` in a notebook too), unless the user set a level; nst_tf's own import of TensorFlow
# also hides the start-up lines that ignore the level (``tensors/quiet.py``).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Public name -> the module that defines it.
_HOMES = {
    "CONFIG": "plan.config",
    "CourseConfig": "plan.config",
    "STYLE_LAYERS": "plan.config",
    "StyleTransferConfig": "plan.config",
    "GRAPH_LAYERS": "plan.networks.vgg19",
    "compute_content_cost": "tensors.costs",
    "compute_layer_style_cost": "tensors.costs",
    "compute_style_cost": "tensors.costs",
    "gram_matrix": "tensors.costs",
    "layer_style_cost_from_gram": "tensors.costs",
    "style_gram": "tensors.costs",
    "total_cost": "tensors.costs",
    "temporal_cost": "tensors.costs",
    "total_variation_cost": "tensors.costs",
    "weighted_style_cost": "tensors.costs",
    "guided_gram": "tensors.guided",
    "guided_layer_style_cost": "tensors.guided",
    "GuidedContent": "plan.masks",
    "GuidedStyle": "plan.masks",
    "mask_at_layer": "plan.masks",
    "match_color_statistics": "tensors.colors",
    "preserve_luminance": "tensors.colors",
    "ImageError": "ground.errors",
    "NonFiniteCostError": "ground.errors",
    "NSTError": "ground.errors",
    "WeightsFileError": "ground.errors",
    "ImageSize": "tensors.images",
    "deprocess_image": "tensors.images",
    "fit_image": "tensors.images",
    "image_size": "tensors.images",
    "generate_noise_image": "tensors.images",
    "load_image": "tensors.images",
    "read_image": "tensors.images",
    "reshape_and_normalize_image": "tensors.images",
    "save_image": "tensors.images",
    "size_for": "ground.checks",
    "LBFGS": "loop.lbfgs",
    "LargeImageOptions": "plan.large_options",
    "scale_sizes": "plan.large_options",
    "CoarseToFine": "runs.coarse_to_fine",
    "ScaleProgress": "runs.coarse_to_fine",
    "TiledStyleCost": "objective.tiled",
    "make_style_cost": "objective.tiled",
    "StyleCost": "objective.whole",
    "Progress": "loop.optimize",
    "StyleTransfer": "loop.optimize",
    "Tick": "loop.optimize",
    "stylize": "loop.optimize",
    "stylize_image": "app.notebook",
    "SqueezeNet": "tensors.squeezenet_module",
    "SqueezeNetWeights": "plan.networks.squeezenet",
    "read_squeezenet": "plan.weights.squeezenet_reader",
    "shorter_side_size": "ground.checks",
    "VGG19": "tensors.vgg19_module",
    "VGGWeights": "plan.networks.vgg19",
    "load_vgg_model": "tensors.vgg19_module",
    "read_vgg19_mat": "plan.weights.matconvnet",
    "read_vgg19_h5": "plan.weights.keras",
    "read_weights": "plan.weights.readers",
    "Stylizer": "runs.many_images",
    "stylize_many": "runs.many_images",
    "stylize_video": "runs.video_frames",
    "stylize_fast": "runs.fast_stylize",
    "FastModel": "runs.fast_models",
    "load_fast_model": "runs.fast_models",
    "weights_file_kind": "plan.weights.readers",
}

#: Public submodules under their short names: ``nst_tf.cs231n``, ``nst_tf.presets.PRESETS``.
_MODULES = {"cs231n": "tensors.cs231n", "presets": "runs.presets"}

__all__ = sorted(_HOMES)


def _load(home):
    """The module ``home`` of nst_tf, imported now: plain deferred imports, which import-linter sees."""
    if home.startswith("runs."):
        return _load_run(home)
    if home == "app.notebook":
        from .app import notebook as module
    elif home == "ground.checks":
        from .ground import checks as module
    elif home == "ground.errors":
        from .ground import errors as module
    elif home == "loop.lbfgs":
        from .loop import lbfgs as module
    elif home == "loop.optimize":
        from .loop import optimize as module
    elif home == "objective.tiled":
        from .objective import tiled as module
    elif home == "objective.whole":
        from .objective import whole as module
    elif home == "plan.config":
        from .plan import config as module
    elif home == "plan.large_options":
        from .plan import large_options as module
    elif home == "plan.masks":
        from .plan import masks as module
    elif home == "plan.networks.squeezenet":
        from .plan.networks import squeezenet as module
    elif home == "plan.networks.vgg19":
        from .plan.networks import vgg19 as module
    elif home == "plan.weights.keras":
        from .plan.weights import keras as module
    elif home == "plan.weights.matconvnet":
        from .plan.weights import matconvnet as module
    elif home == "plan.weights.readers":
        from .plan.weights import readers as module
    elif home == "plan.weights.squeezenet_reader":
        from .plan.weights import squeezenet_reader as module
    elif home == "tensors.colors":
        from .tensors import colors as module
    elif home == "tensors.costs":
        from .tensors import costs as module
    elif home == "tensors.cs231n":
        from .tensors import cs231n as module
    elif home == "tensors.guided":
        from .tensors import guided as module
    elif home == "tensors.images":
        from .tensors import images as module
    elif home == "tensors.squeezenet_module":
        from .tensors import squeezenet_module as module
    elif home == "tensors.vgg19_module":
        from .tensors import vgg19_module as module
    else:
        raise AssertionError(home)
    return module


def _load_run(home):
    """The module ``home`` of ``nst_tf.runs``, imported now."""
    if home == "runs.coarse_to_fine":
        from .runs import coarse_to_fine as module
    elif home == "runs.fast_models":
        from .runs import fast_models as module
    elif home == "runs.fast_stylize":
        from .runs import fast_stylize as module
    elif home == "runs.many_images":
        from .runs import many_images as module
    elif home == "runs.presets":
        from .runs import presets as module
    elif home == "runs.video_frames":
        from .runs import video_frames as module
    else:
        raise AssertionError(home)
    return module


def __getattr__(name):
    if name in _HOMES:
        value = getattr(_load(_HOMES[name]), name)
    elif name in _MODULES:
        value = _load(_MODULES[name])
    else:
        raise AttributeError(f"module 'nst_tf' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
