"""nst_tf: the deeplearning.ai neural style transfer assignment as a TensorFlow 2 library.

The course's graded functions (``compute_content_cost``, ``gram_matrix``,
``compute_layer_style_cost``, ``compute_style_cost``, ``total_cost``), its
helpers (``CONFIG``, ``reshape_and_normalize_image``,
``generate_noise_image``, ``save_image``, ``load_vgg_model``), the objective
(``StyleCost``) and the optimization loop (``StyleTransfer``, ``stylize``),
plus what the course leaves out: total variation, L-BFGS, colour
preservation, several styles, and large images (``TiledStyleCost``: the
same costs and gradients in tiles; ``CoarseToFine``: several sizes). Stanford
CS231n's edition runs on ``SqueezeNet`` (torchvision's SqueezeNet 1.1, read by
``read_squeezenet``), with its functions under their names in
``nst_tf.tensors.cs231n``.

The names below, and the submodules (``nst_tf.runs.presets.PRESETS``), are
imported on first use, so that ``python -m nst_tf -h`` and the command's
input errors answer before TensorFlow (seconds to import) is loaded.
"""

import importlib
import importlib.util

__version__ = "0.1.0"

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
    "weights_file_kind": "plan.weights.readers",
}

#: Public submodules under their short names: ``nst_tf.cs231n``, ``nst_tf.presets.PRESETS``.
_MODULES = {"cs231n": "tensors.cs231n", "presets": "runs.presets"}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    elif name in _MODULES:
        value = importlib.import_module(f".{_MODULES[name]}", __name__)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a layer's package: nst_tf.runs
    else:
        raise AttributeError(f"module 'nst_tf' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
