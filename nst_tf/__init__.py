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
``nst_tf.cs231n``.

The names below, and the submodules (``nst_tf.presets.PRESETS``), are
imported on first use, so that ``python -m nst_tf -h`` and the command's
input errors answer before TensorFlow (seconds to import) is loaded.
"""

import importlib
import importlib.util

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_HOMES = {
    "CONFIG": "config",
    "CourseConfig": "config",
    "STYLE_LAYERS": "config",
    "StyleTransferConfig": "config",
    "GRAPH_LAYERS": "networks.vgg19",
    "compute_content_cost": "costs",
    "compute_layer_style_cost": "costs",
    "compute_style_cost": "costs",
    "gram_matrix": "costs",
    "layer_style_cost_from_gram": "costs",
    "style_gram": "costs",
    "total_cost": "costs",
    "temporal_cost": "costs",
    "total_variation_cost": "costs",
    "weighted_style_cost": "costs",
    "match_color_statistics": "colors",
    "preserve_luminance": "colors",
    "ImageError": "errors",
    "NonFiniteCostError": "errors",
    "NSTError": "errors",
    "WeightsFileError": "errors",
    "ImageSize": "images",
    "deprocess_image": "images",
    "fit_image": "images",
    "image_size": "images",
    "generate_noise_image": "images",
    "load_image": "images",
    "read_image": "images",
    "reshape_and_normalize_image": "images",
    "save_image": "images",
    "size_for": "images",
    "LBFGS": "lbfgs",
    "LargeImageOptions": "large.options",
    "scale_sizes": "large.options",
    "CoarseToFine": "large.multiscale",
    "ScaleProgress": "large.multiscale",
    "TiledStyleCost": "objective.tiled",
    "make_style_cost": "objective.tiled",
    "StyleCost": "objective.whole",
    "Progress": "optimize",
    "StyleTransfer": "optimize",
    "Tick": "optimize",
    "stylize": "optimize",
    "SqueezeNet": "networks.squeezenet_module",
    "SqueezeNetWeights": "networks.squeezenet",
    "read_squeezenet": "weights.squeezenet",
    "shorter_side_size": "images",
    "VGG19": "networks.vgg19_module",
    "VGGWeights": "networks.vgg19",
    "load_vgg_model": "networks.vgg19_module",
    "read_vgg19_mat": "weights.matconvnet",
    "read_vgg19_h5": "weights.keras",
    "read_weights": "weights",
    "weights_file_kind": "weights",
}

__all__ = sorted(_HOMES)


def __getattr__(name):
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule: nst_tf.presets.PRESETS
    else:
        raise AttributeError(f"module 'nst_tf' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
