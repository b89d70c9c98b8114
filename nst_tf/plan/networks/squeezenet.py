"""SqueezeNet 1.1's description, as torchvision builds it and CS231n's style transfer uses it.

Free of TensorFlow. ``PARAMETERS``: torchvision's ``squeezenet1_1-b8a52dc0.pth`` tensors by key, PyTorch shapes
(kernels OIHW); ``SQUEEZENET_NETWORK``: the 13 modules of ``features`` as nst_tf computes them. Layer names are the
authors' Caffe model's; each also answers to its torchvision index (``ALIASES``), as CS231n's PyTorch edition
numbers ``features`` (its TensorFlow edition numbers one lower: its 0 is features.1, conv1 with its ReLU)::

    name        index  TF ed.  module (torchvision)          output (C, size for input L)
    conv1         0      -     Conv2d(3, 64, 3, stride 2)     64, floor((L - 3) / 2) + 1
    relu_conv1    1      0     ReLU                           64, same
    pool1         2      1     MaxPool2d(3, 2, ceil_mode)     64, ceil((n - 3) / 2) + 1
    fire2         3      2     Fire(64, 16, 64, 64)          128, same
    fire3         4      3     Fire(128, 16, 64, 64)         128, same
    pool3         5      4     MaxPool2d(3, 2, ceil_mode)    128, ceil((n - 3) / 2) + 1
    fire4         6      5     Fire(128, 32, 128, 128)       256, same
    fire5         7      6     Fire(256, 32, 128, 128)       256, same
    pool5         8      7     MaxPool2d(3, 2, ceil_mode)    256, ceil((n - 3) / 2) + 1
    fire6         9      8     Fire(256, 48, 192, 192)       384, same
    fire7        10      9     Fire(384, 48, 192, 192)       384, same
    fire8        11     10     Fire(384, 64, 256, 256)       512, same
    fire9        12     11     Fire(512, 64, 256, 256)       512, same

A ceil-mode pooling's last window may hang over the bottom or right edge (PyTorch's rule: it must start
inside the input), so a pooling of n >= 2 positions gives n // 2; features.12 is not empty from 17x17 on.
"""

from dataclasses import dataclass

import numpy as np

from ...ground.errors import NSTError
from .base import Network

#: The Fire modules of ``features``: index -> (input channels, squeeze, expand 1x1, expand 3x3).
FIRES = {
    3: (64, 16, 64, 64),
    4: (128, 16, 64, 64),
    6: (128, 32, 128, 128),
    7: (256, 32, 128, 128),
    9: (256, 48, 192, 192),
    10: (384, 48, 192, 192),
    11: (384, 64, 256, 256),
    12: (512, 64, 256, 256),
}


def _parameters():
    shapes = {"features.0.weight": (64, 3, 3, 3), "features.0.bias": (64,)}
    for index, (inputs, squeeze, expand1, expand3) in FIRES.items():
        for part, (out, inp, k) in {
            "squeeze": (squeeze, inputs, 1),
            "expand1x1": (expand1, squeeze, 1),
            "expand3x3": (expand3, squeeze, 3),
        }.items():
            shapes[f"features.{index}.{part}.weight"] = (out, inp, k, k)
            shapes[f"features.{index}.{part}.bias"] = (out,)
    shapes["classifier.1.weight"] = (1000, 512, 1, 1)
    shapes["classifier.1.bias"] = (1000,)
    return shapes


#: torchvision's state-dict key -> PyTorch shape: 52 tensors, 1,235,496 float32 parameters.
PARAMETERS = _parameters()

#: The keys the style-transfer network needs (``features`` only; the classifier is not used).
FEATURE_PARAMETERS = tuple(key for key in PARAMETERS if key.startswith("features."))


@dataclass(frozen=True, eq=False)
class SqueezeNetWeights:
    """SqueezeNet 1.1's ``features`` weights: ``params``, state-dict key (``FEATURE_PARAMETERS``) -> float32 array
    in PyTorch's layout (kernels OIHW, biases (out,)); ``layout``, the file's kind ("zip" or "legacy",
    torch.save's two formats, "safetensors" or "synthetic"); ``source``, the path read."""

    params: dict
    layout: str
    source: str


def random_squeezenet_weights(seed=0, source="<synthetic>"):
    """Synthetic ``SqueezeNetWeights`` with He-scaled normal kernels and small biases, for tests and demos."""
    rng = np.random.default_rng(seed)
    params = {}
    for key in FEATURE_PARAMETERS:
        shape = PARAMETERS[key]
        if key.endswith(".weight"):
            fan_in = int(np.prod(shape[1:]))
            params[key] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        else:
            params[key] = (rng.standard_normal(shape) * 0.01).astype(np.float32)
    return SqueezeNetWeights(params=params, layout="synthetic", source=source)


#: The 13 modules of ``features`` in computation order, by name; a layer's torchvision index is its position.
LAYERS = tuple("conv1 relu_conv1 pool1 fire2 fire3 pool3 fire4 fire5 pool5 fire6 fire7 fire8 fire9".split())

#: Each layer's kind: "conv" (3x3, stride 2, no padding), "relu", "pool" (3x3, stride 2, ceil mode) or "fire".
KINDS = ("conv", "relu", "pool") + tuple("pool" if name.startswith("pool") else "fire" for name in LAYERS[3:])

#: torchvision's ``features`` index (as the PyTorch edition of CS231n writes it, "0" ... "12") -> name.
ALIASES = tuple((str(index), name) for index, name in enumerate(LAYERS))

#: Smallest height and width with a non-empty features.12: 17 -> 8 (conv1) -> 4 -> 2 -> 1 (the poolings).
MIN_IMAGE_SIZE = 17

#: Its one pooling: torchvision's max pooling in ceil mode.
POOLINGS = ("max",)


def conv1_length(length):
    """Positions of features.0 (3x3, stride 2, no padding) for ``length`` input positions: 0 below 3."""
    return (length - 3) // 2 + 1 if length >= 3 else 0


def pool_length(length):
    """Positions of a ``MaxPool2d(3, 2, ceil_mode=True)`` for ``length`` inputs, as PyTorch computes it:
    ``ceil((length - 3) / 2) + 1``, less one where the last window would start outside the input; 0 below 2
    inputs (PyTorch refuses). That is ``length // 2`` from 2 on."""
    out = (length - 3 + 1) // 2 + 1
    if (out - 1) * 2 >= length:
        out -= 1
    return max(out, 0)


class SqueezeNetDescription(Network):
    """``Network`` with SqueezeNet's geometry: a stride-2 VALID convolution, ceil-mode poolings, Fire modules; on
    no grid tiles could share (conv1's position i sees pixels 2i .. 2i + 2), so not ``tileable``, no ``reach``."""

    _strided = ("conv", "pool")

    def reach(self, layer):
        """Refused: SqueezeNet cannot be computed in tiles (see the class docstring)."""
        self.check_layer("layer", layer)
        raise NSTError(
            f"{self.title} has no tile geometry: its unpadded stride-2 first convolution and ceil-mode "
            "poolings keep no tile on the whole image's grid"
        )

    def _after(self, kind, length, pooling):
        """``conv1_length`` after features.0, ``pool_length`` after each pooling; the ReLU and the Fire
        modules (1x1 and padded 3x3 convolutions) keep the size."""
        return conv1_length(length) if kind == "conv" else pool_length(length) if kind == "pool" else length


#: SqueezeNet 1.1 as nst_tf computes it: torchvision's ``features``, CS231n's default layers, its memory.
SQUEEZENET_NETWORK = SqueezeNetDescription(
    name="squeezenet",
    title="SqueezeNet 1.1",
    layers=LAYERS,
    kinds=KINDS,
    poolings=POOLINGS,
    # torchvision's: RGB / 255, minus ImageNet's mean, over its standard deviation (nst_tf.tensors.images).
    normalizations=("imagenet",),
    mean_pixel=None,
    # CS231n's Composition VII: content layer 3, style layers (1, 4, 6, 7) with weights (20000, 500, 12, 1).
    content_layer="fire2",
    style_layers=(("relu_conv1", 20000.0), ("fire3", 500.0), ("fire4", 12.0), ("fire5", 1.0)),
    min_image_size=MIN_IMAGE_SIZE,
    # Measured (CPU, float32, TensorFlow 2.21; VmHWM in a fresh process, per pixel between squares of 256 and 768,
    # 512 and 1024 pixels): building the module 15.7-16.4 MB; three Adam steps 546 and 558; the style targets 302
    # and 315; a forward pass under a GradientTape 563 and 561.
    weights_bytes=16 * 2**20,
    # A whole command peaked higher (its image buffers too): 1781-1936 MiB at 1024x1365, 2.67 GiB at 1536x2048;
    # 800 keeps both under the estimate.
    pixel_bytes=800,
    forward_pixel_bytes=320,
    kept_pixel_bytes=560,
    tileable=False,
    aliases=ALIASES,
)
