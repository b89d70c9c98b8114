"""SqueezeNet 1.1's description, as torchvision builds it and CS231n's style transfer uses it.

Kept free of TensorFlow, like ``vgg19.py``. ``PARAMETERS`` lists the tensors
of torchvision's ``squeezenet1_1-b8a52dc0.pth`` by their state-dict keys
with their PyTorch shapes (kernels OIHW); ``SqueezeNetWeights`` is what its
readers (``nst_tf.weights.squeezenet``) return.
"""

from dataclasses import dataclass

import numpy as np

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
    """SqueezeNet 1.1's ``features`` weights as NumPy arrays (no TensorFlow).

    Attributes:
        params: state-dict key (``FEATURE_PARAMETERS``) -> float32 array in
            PyTorch's layout (kernels OIHW, biases (out,)), as the file has it.
        layout: the kind of file read: "zip" or "legacy" (torch.save's two
            formats), "safetensors", or "synthetic".
        source: the path the weights were read from.
    """

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
