"""The course's cost functions as pure TensorFlow functions (tensors in and out: eager, in ``tf.function`` with
unknown sizes too, and in Keras layers), computing in their inputs' dtype.

float16 cannot hold the style cost at real sizes (4 * n_C**2 * (n_H*n_W)**2 exceeds 65504 past about 2x2x8), and
bfloat16's 8-bit mantissa loses three digits of Gram sums: cast reduced-precision activations to float32 first.
"""

from .quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from ..plan.config import STYLE_LAYERS, TV_FORMS


def as_tensor(x, name):
    """``tf.convert_to_tensor(x)``, or ``NSTError`` naming ``name``."""
    try:
        return tf.convert_to_tensor(x)
    except (TypeError, ValueError):
        raise NSTError(f"{name} must be a tensor or array; got {type(x).__name__}") from None


def shape_text(x):
    """A tensor's static shape for a message: "(1, None, 4)", or "unknown rank"."""
    if x.shape.rank is None:
        return "unknown rank"
    return "(" + ", ".join("None" if d is None else str(d) for d in x.shape.as_list()) + ")"


def check_same(a, b, name_a, name_b):
    """``NSTError`` unless tensors ``a`` and ``b`` have compatible shapes and one dtype."""
    if not a.shape.is_compatible_with(b.shape):
        raise NSTError(f"{name_a} and {name_b} must have the same shape; got {shape_text(a)} and {shape_text(b)}")
    if a.dtype != b.dtype:
        raise NSTError(f"{name_a} and {name_b} must have the same dtype; got {a.dtype.name} and {b.dtype.name}")


def _activation(x, name):
    """``x`` as a floating tensor of static rank 4 with batch size 1."""
    x = as_tensor(x, name)
    if not x.dtype.is_floating:
        raise NSTError(f"{name} must be a floating-point tensor; got dtype {x.dtype.name}")
    if x.shape.rank != 4 or x.shape[0] not in (None, 1):
        raise NSTError(f"{name} must have shape (1, n_H, n_W, n_C); got {shape_text(x)}")
    return x


def _outputs(value):
    """Whether ``value`` is the second edition's list of a Keras model's outputs."""
    return isinstance(value, (list, tuple))


def _dims(x):
    """(n_H, n_W, n_C) of a (1, n_H, n_W, n_C) tensor, static where known."""
    dynamic = tf.shape(x)[1:]
    return [s if s is not None else dynamic[i] for i, s in enumerate(x.shape.as_list()[1:])]


def compute_content_cost(a_C, a_G):
    """Content cost ``sum((a_C - a_G)**2) / (4 * n_H * n_W * n_C)``, a scalar tensor.

    ``a_C`` and ``a_G`` are the content and generated images' activations of one layer, (1, n_H, n_W, n_C), of
    one dtype; or, the second edition's call, the lists of a Keras model's outputs, whose last is the content
    layer's.

    Raises:
        NSTError: an activation is not a floating tensor of shape (1, n_H, n_W, n_C), the two differ in
            shape or dtype, or (second edition) they are not both non-empty lists of outputs.
    """
    if _outputs(a_C) or _outputs(a_G):
        if not (_outputs(a_C) and _outputs(a_G) and a_C and a_G):
            raise NSTError("content_output and generated_output must both be non-empty lists of layer outputs")
        a_C, a_G = a_C[-1], a_G[-1]
    a_C, a_G = _activation(a_C, "a_C"), _activation(a_G, "a_G")
    check_same(a_C, a_G, "a_C", "a_G")
    return content_cost_from_sum(tf.reduce_sum(tf.square(a_C - a_G)), *_dims(a_G))


def content_cost_from_sum(squares, n_H, n_W, n_C):
    """``squares / (4 * n_H * n_W * n_C)`` in ``squares``' dtype: the content cost from ``sum((a_C - a_G)**2)``
    (a floating scalar tensor) and the layer's sizes (Python ints or integer scalars)."""
    # Sizes are cast before multiplying: 4*n_H*n_W*n_C overflows int32 for large images.
    n_H, n_W, n_C = (tf.cast(n, squares.dtype) for n in (n_H, n_W, n_C))
    return squares / (4.0 * n_H * n_W * n_C)


def gram_matrix(A):
    """Gram (style) matrix ``A @ A^T``, (n_C, n_C), of an unrolled activation ``A`` of shape (n_C, n_H*n_W).

    Computed as the course writes it, ``tf.matmul(A, tf.transpose(A))``; float32's last bits depend on the CPU's
    arithmetic (vector width, FMA, oneDNN's kernel), as the course's own do.

    Raises:
        NSTError: ``A`` cannot be converted to a tensor or is not of rank 2.
    """
    A = as_tensor(A, "A")
    if A.shape.rank != 2:
        raise NSTError(f"A must have shape (n_C, n_H*n_W); got {shape_text(A)}")
    return tf.matmul(A, tf.transpose(A))


def _unroll(a):
    """The course's unrolling: (1, n_H, n_W, n_C) -> (n_C, n_H*n_W)."""
    return tf.transpose(tf.reshape(a, [-1, _dims(a)[2]]))


def style_gram(a):
    """Gram matrix (n_C, n_C) of a (1, n_H, n_W, n_C) activation: ``gram_matrix`` of the course's unrolled
    activation, as ``F^T F`` with ``F = reshape(a, (n_H*n_W, n_C))`` and ``transpose_a``, which spares
    materializing the transpose (float32's last bit may differ). ``NSTError`` unless ``a`` is a floating
    tensor of shape (1, n_H, n_W, n_C)."""
    a = _activation(a, "a")
    unrolled = tf.reshape(a, [-1, _dims(a)[2]])
    return tf.matmul(unrolled, unrolled, transpose_a=True)


def style_normalizer(n_H, n_W, n_C, dtype=tf.float32):
    """``4 * n_C**2 * (n_H * n_W)**2``, a scalar tensor of ``dtype``: what the course divides a layer's squared
    Gram difference by (sizes are Python ints or integer scalars). The Keras L-BFGS variant divides by the
    image's ``4 * 3**2 * (H W)**2``: ``style_normalizer(H, W, 3)``."""
    # Sizes are cast before multiplying: (n_H*n_W)**2 overflows int32 already at 216x216.
    n_H, n_W, n_C = (tf.cast(n, dtype) for n in (n_H, n_W, n_C))
    return 4.0 * tf.square(n_C) * tf.square(n_H * n_W)


def gram_distance(gram_S, gram_G, normalizer):
    """``sum((gram_S - gram_G)**2) / normalizer``, a scalar tensor: one layer's style cost from its (n_C, n_C)
    Gram matrices (one dtype) and the course's ``4 * n_C**2 * (n_H*n_W)**2`` or another normalizer."""
    return tf.reduce_sum(tf.square(gram_S - gram_G)) / tf.cast(normalizer, gram_G.dtype)


def layer_style_cost_from_gram(gram_S, a_G, normalizer=None):
    """Style cost ``sum((gram_S - style_gram(a_G))**2) / normalizer`` of one layer, a scalar tensor, from the
    style's Gram matrix (n_C, n_C) and the generated activation (1, n_H, n_W, n_C); ``normalizer`` by default
    the course's ``4 * n_C**2 * (n_H*n_W)**2``. ``NSTError`` for an ``a_G`` not floating (1, n_H, n_W, n_C), or a
    ``gram_S`` not (n_C, n_C) of its dtype.
    """
    a_G = _activation(a_G, "a_G")
    gram_S = tf.convert_to_tensor(gram_S)
    n_C = a_G.shape[-1]
    if gram_S.shape.rank != 2 or (n_C is not None and not gram_S.shape.is_compatible_with([n_C, n_C])):
        raise NSTError(f"gram_S must have shape (n_C, n_C) = ({n_C}, {n_C}); got {shape_text(gram_S)}")
    if gram_S.dtype != a_G.dtype:
        raise NSTError(f"gram_S and a_G must have the same dtype; got {gram_S.dtype.name} and {a_G.dtype.name}")
    normalizer = style_normalizer(*_dims(a_G), dtype=a_G.dtype) if normalizer is None else normalizer
    return gram_distance(gram_S, style_gram(a_G), normalizer)


def compute_layer_style_cost(a_S, a_G):
    """Style cost ``sum((G_S - G_G)**2) / (4 * n_C**2 * (n_H*n_W)**2)`` of one layer, a scalar tensor.

    ``a_S`` and ``a_G`` are the style and generated images' activations, (1, n_H, n_W, n_C), of one dtype,
    each unrolled as the course does to (n_C, n_H*n_W) for ``gram_matrix``.

    Raises:
        NSTError: an activation is not a floating tensor of shape (1, n_H, n_W, n_C), or the two differ in
            shape or dtype.
    """
    a_S, a_G = _activation(a_S, "a_S"), _activation(a_G, "a_G")
    check_same(a_S, a_G, "a_S", "a_G")
    normalizer = style_normalizer(*_dims(a_G), dtype=a_G.dtype)
    return gram_distance(gram_matrix(_unroll(a_S)), gram_matrix(_unroll(a_G)), normalizer)


def weighted_style_cost(style_layers, layer_cost):
    """``sum_l weight_l * layer_cost(l)`` over ``style_layers``' (layer name, weight) pairs: the weighted sum
    every style cost in nst_tf is, a scalar tensor in the layer costs' dtype (float32 for no layers)."""
    J_style = None
    for layer_name, weight in style_layers:
        J_layer = layer_cost(layer_name)
        term = _to(weight, J_layer.dtype) * J_layer
        J_style = term if J_style is None else J_style + term
    return J_style if J_style is not None else tf.constant(0.0)


def compute_style_cost(style_activations, generated_activations, style_layers=STYLE_LAYERS):
    """Weighted style cost ``sum_l weight_l * compute_layer_style_cost(S[l], G[l])``, a scalar tensor, over
    ``style_layers``' (layer name, weight) pairs; ``S`` and ``G`` map layer names to the style and generated
    images' activations (1, n_H, n_W, n_C). The second edition's lists of a Keras model's outputs are accepted
    too: all but the last (the content layer's) pair with ``style_layers`` by position. The first edition's
    ``compute_style_cost(model, STYLE_LAYERS)`` needed a TF1 session; in TF2 pass ``model(style, layers=names)``
    and ``model(generated, layers=names)``.

    Raises:
        NSTError: that first-edition call; arguments neither mappings nor lists of outputs; a layer missing;
            output counts that disagree with ``style_layers``; activations ``compute_layer_style_cost`` refuses.
    """
    if _is_style_layers(generated_activations):
        raise NSTError(
            "compute_style_cost(model, STYLE_LAYERS) is the first edition's TF1 call, which needs a session; "
            "in nst_tf call compute_style_cost(model(style_image, layers=names), model(generated, layers=names))"
        )
    if _outputs(style_activations) or _outputs(generated_activations):
        return _second_edition_style_cost(style_activations, generated_activations, style_layers)
    for mapping, which in ((style_activations, "style_activations"), (generated_activations, "generated_activations")):
        if not hasattr(mapping, "keys"):
            raise NSTError(f"{which} must map layer names to activations; got {type(mapping).__name__}")

    def layer_cost(layer_name):
        for mapping, which in ((style_activations, "style"), (generated_activations, "generated")):
            if layer_name not in mapping:
                raise NSTError(f"{which} activations have no layer {layer_name!r}")
        return compute_layer_style_cost(style_activations[layer_name], generated_activations[layer_name])

    return weighted_style_cost(style_layers, layer_cost)


def _is_style_layers(value):
    pairs = isinstance(value, (list, tuple)) and bool(value)
    return pairs and all(isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) for p in value)


def _second_edition_style_cost(style_outputs, generated_outputs, style_layers):
    if not (_outputs(style_outputs) and _outputs(generated_outputs)):
        raise NSTError("style_image_output and generated_image_output must both be lists of layer outputs")
    a_S, a_G = list(style_outputs[:-1]), list(generated_outputs[:-1])
    if not len(a_S) == len(a_G) == len(style_layers):
        raise NSTError(
            f"{len(a_S)} style outputs (all but the last), {len(a_G)} generated outputs and "
            f"{len(style_layers)} STYLE_LAYERS entries; they must agree"
        )
    by_position = [(str(i), weight) for i, (_, weight) in enumerate(style_layers)]
    return weighted_style_cost(by_position, lambda i: compute_layer_style_cost(a_S[int(i)], a_G[int(i)]))


def _to(x, dtype):
    # convert_to_tensor with a hint keeps a Python float's full precision in
    # float64; a bare tf.cast would round it through float32 first.
    return tf.cast(tf.convert_to_tensor(x, dtype_hint=dtype), dtype)


def _float_dtype(x):
    dtype = getattr(x, "dtype", None)
    return None if dtype is None or not tf.as_dtype(dtype).is_floating else tf.as_dtype(dtype)


def total_cost(J_content, J_style, alpha=10, beta=40):
    """Total cost ``alpha * J_content + beta * J_style``, a tf.Tensor in the dtype of a floating tensor or array
    argument (both must agree); plain Python numbers give float32, TensorFlow's default.

    Raises:
        NSTError: ``J_content`` and ``J_style`` have different floating dtypes.
    """
    dtypes = {d for d in (_float_dtype(J_content), _float_dtype(J_style)) if d is not None}
    if len(dtypes) > 1:
        raise NSTError(
            "J_content and J_style must have the same dtype; got " + " and ".join(sorted(d.name for d in dtypes))
        )
    dtype = dtypes.pop() if dtypes else tf.float32
    return _to(alpha, dtype) * _to(J_content, dtype) + _to(beta, dtype) * _to(J_style, dtype)


def total_variation_cost(image, form="squared"):
    """Total-variation regularizer of an image (1, H, W, C), a scalar tensor in its dtype.

    ``form="squared"``: ``sum (x[i+1, j] - x[i, j])**2 + sum (x[i, j+1] - x[i, j])**2`` over all channels;
    ``"power"`` (the Keras L-BFGS variant's), over the top-left (H-1) x (W-1) pixels:
    ``sum ((x[i, j] - x[i+1, j])**2 + (x[i, j] - x[i, j+1])**2) ** 1.25``. ``NSTError`` for a ``form`` not in
    ``TV_FORMS``, or an ``image`` not floating (1, H, W, C).
    """
    if form not in TV_FORMS:
        raise NSTError(f"form must be one of {', '.join(TV_FORMS)}; got {form!r}")
    x = _activation(image, "image")
    if form == "squared":
        return tf.reduce_sum(tf.square(x[:, 1:] - x[:, :-1])) + tf.reduce_sum(tf.square(x[:, :, 1:] - x[:, :, :-1]))
    corner = x[:, :-1, :-1]
    return tf.reduce_sum(tf.pow(tf.square(corner - x[:, 1:, :-1]) + tf.square(corner - x[:, :-1, 1:]), 1.25))


def temporal_cost(image, warped, weights):
    """Ruder et al.'s temporal consistency cost of a video frame (1, H, W, C), a scalar tensor in its dtype.

    ``sum_k sum(weights[k] * (image - warped[k])**2) / (H W C)`` over the earlier stylized frames ``warped``
    (K, H, W, C) warped onto this one, weighted per pixel by ``weights`` (K, H, W, 1) (0 where the flow is not
    trusted). ``NSTError`` for an ``image`` not floating (1, H, W, C), or ``warped`` and ``weights`` not of its
    sizes and dtype with one K.
    """
    x = _activation(image, "image")
    warped, weights = as_tensor(warped, "warped"), as_tensor(weights, "weights")
    for name, tensor, channels in (("warped", warped, x.shape[-1]), ("weights", weights, 1)):
        expected = tf.TensorShape([None, *x.shape[1:3], channels])
        if tensor.dtype != x.dtype or not tensor.shape.is_compatible_with(expected):
            raise NSTError(
                f"{name} must have shape (K, {', '.join(str(d) for d in expected[1:])}) and dtype {x.dtype.name}; "
                f"got {shape_text(tensor)} {tensor.dtype.name}"
            )
    if warped.shape[0] is not None and weights.shape[0] is not None and warped.shape[0] != weights.shape[0]:
        raise NSTError(f"warped holds {warped.shape[0]} frames and weights {weights.shape[0]}; they must match")
    size = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), x.dtype)
    return tf.reduce_sum(weights * tf.square(x - warped)) / size
