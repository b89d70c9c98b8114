"""VGG-19's description (``VGG19_NETWORK``): layer names, indices and widths, geometry, and its weights, free of
TensorFlow (the command checks its options first); ``vgg19_module.VGG19`` computes it."""

from dataclasses import dataclass

import numpy as np

from .base import Network

# fmt: off
#: The 43 layers of MatConvNet's VGG-19, by index in the file's ``layers`` cell (a row a block).
MATCONVNET_LAYERS = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
    "fc6", "relu6", "fc7", "relu7", "fc8", "prob",
)
# fmt: on

#: Index of each convolution in the file, as the course's ``_weights(i, name)`` uses it.
CONV_INDEX = {name: i for i, name in enumerate(MATCONVNET_LAYERS) if name.startswith("conv")}

#: Output channels of each convolution in the real network.
CONV_WIDTHS = {name: 64 * 2 ** min(int(name[4]) - 1, 3) for name in CONV_INDEX}

#: The course's ``graph`` keys after "input", in computation order.
GRAPH_LAYERS = tuple(
    name if name.startswith("conv") else "avg" + name for name in MATCONVNET_LAYERS[:37] if not name.startswith("relu")
)

#: Smallest height and width the network accepts: five 2x2 poolings.
MIN_IMAGE_SIZE = 32

#: Pooling after each block: the course's average pooling, or Keras' (and the Keras L-BFGS variant's) max.
POOLINGS = ("avg", "max")


@dataclass(frozen=True, eq=False)
class VGGWeights:
    """What the network needs from a weights file, as NumPy arrays: ``conv``, layer name -> (kernel (3, 3, in,
    out), bias (out,)), float32, in ``CONV_INDEX``'s order, for RGB input; ``mean_pixel``, the file's mean RGB
    pixel (3,); ``layout``, "new" or "old" (MatConvNet's two) or "keras"; ``source``, the path read."""

    conv: dict
    mean_pixel: np.ndarray
    layout: str
    source: str


#: VGG-19 as nst_tf computes it: the course's graph, its default layers, its memory and its tile geometry.
VGG19_NETWORK = Network(
    name="vgg19",
    title="VGG-19",
    layers=GRAPH_LAYERS,
    kinds=tuple("conv" if name.startswith("conv") else "pool" for name in GRAPH_LAYERS),
    poolings=POOLINGS,
    # RGB, as the .mat stores its first layer (Keras' BGR one is reversed on reading): minus ImageNet's
    # mean pixel (the course's CONFIG.MEANS), or in [0, 1] as the second edition feeds it.
    normalizations=("means", "unit"),
    mean_pixel=(123.68, 116.779, 103.939),
    content_layer="conv4_2",
    style_layers=(("conv1_1", 0.2), ("conv2_1", 0.2), ("conv3_1", 0.2), ("conv4_1", 0.2), ("conv5_1", 0.2)),
    min_image_size=MIN_IMAGE_SIZE,
    # Measured: benchmarks/results/cpu-2026-11-23.md (scaling, load), large-cpu-2026-11-29-tiling.md and
    # budget-*.md (forward passes: 1340-1371 bytes a pixel at 512x512 and 1024x1024).
    weights_bytes=80 * 2**20,
    pixel_bytes=2200,
    forward_pixel_bytes=1400,
    kept_pixel_bytes=500,
    # 1024x1024 in 4 and 16 tiles peaked 45 and 187 MiB above the estimate without it (budget-*.md).
    tile_bytes=12 * 2**20,
)
