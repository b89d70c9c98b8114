"""nst_tf: the deeplearning.ai neural style transfer assignment as a TensorFlow 2 library.

The course's graded functions (``compute_content_cost``, ``gram_matrix``,
``compute_layer_style_cost``, ``compute_style_cost``, ``total_cost``), its
helpers (``CONFIG``, ``reshape_and_normalize_image``,
``generate_noise_image``, ``save_image``, ``load_vgg_model``, which reads
MatConvNet's .mat or Keras' .h5 VGG-19 weights) and the
optimization loop (``StyleTransfer``, ``stylize``), plus what the course
leaves out: total variation, L-BFGS, colour preservation, several styles.
"""

from .config import CONFIG, CourseConfig, StyleTransferConfig
from .costs import (
    STYLE_LAYERS,
    compute_content_cost,
    compute_layer_style_cost,
    compute_style_cost,
    gram_matrix,
    layer_style_cost_from_gram,
    style_gram,
    total_cost,
    total_variation_cost,
)
from .colors import match_color_statistics, preserve_luminance
from .errors import ImageError, NonFiniteCostError, NSTError, WeightsFileError
from .images import (
    deprocess_image,
    fit_image,
    generate_noise_image,
    load_image,
    read_image,
    reshape_and_normalize_image,
    save_image,
    size_for,
)
from .keras_weights import read_vgg19_h5
from .lbfgs import LBFGS
from .optimize import Progress, StyleTransfer, stylize
from .vgg import GRAPH_LAYERS, VGG19, VGGWeights, load_vgg_model, read_vgg19_mat

__version__ = "0.1.0"

__all__ = [
    "CONFIG",
    "CourseConfig",
    "GRAPH_LAYERS",
    "ImageError",
    "LBFGS",
    "NSTError",
    "NonFiniteCostError",
    "Progress",
    "STYLE_LAYERS",
    "StyleTransfer",
    "StyleTransferConfig",
    "VGG19",
    "VGGWeights",
    "WeightsFileError",
    "compute_content_cost",
    "compute_layer_style_cost",
    "compute_style_cost",
    "deprocess_image",
    "fit_image",
    "generate_noise_image",
    "gram_matrix",
    "layer_style_cost_from_gram",
    "load_image",
    "load_vgg_model",
    "match_color_statistics",
    "preserve_luminance",
    "read_image",
    "read_vgg19_h5",
    "read_vgg19_mat",
    "reshape_and_normalize_image",
    "save_image",
    "size_for",
    "style_gram",
    "stylize",
    "total_cost",
    "total_variation_cost",
]
