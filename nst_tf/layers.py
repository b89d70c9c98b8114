"""VGG-19's layer vocabulary: names, indices and widths, as facts of the network.

Kept free of TensorFlow so that the command can check its options (layer
names, image sizes) before TensorFlow is imported, which takes seconds.
"""

#: The 43 layers of MatConvNet's VGG-19, by index in the file's ``layers`` cell.
MATCONVNET_LAYERS = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
    "fc6", "relu6", "fc7", "relu7", "fc8", "prob",
)  # fmt: skip  (one row per block, as the course lists them)

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
