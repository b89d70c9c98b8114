"""The course's cost functions, as pure TensorFlow functions.

Every function here takes tensors (or values convertible to tensors) and
returns tensors. None reads files, prints, or calls NumPy, so all of them
work eagerly, inside ``tf.function`` (also with unknown spatial sizes) and
inside Keras layers.

Precision: the functions compute in the dtype of their inputs. float32 and
float64 are exact in the sense of the course. In float16 the style cost is
unusable at real sizes: Gram entries are sums over n_H*n_W products and the
normaliser 4 * n_C**2 * (n_H*n_W)**2 exceeds float16's maximum (65504) for
any layer larger than about 2x2x8, so the cost becomes inf/inf or 0.
bfloat16 has float32's range but only 8 bits of mantissa, so Gram sums lose
about three significant digits. For reduced precision, cast activations to
float32 before calling these functions.
"""

import tensorflow as tf

from ..ground.errors import NSTError
from ..plan.config import STYLE_LAYERS, TV_FORMS


def _activation(x, name):
    """Converts ``x`` to a floating tensor of static rank 4 with batch size 1."""
    x = _tensor(x, name)
    if not x.dtype.is_floating:
        raise NSTError(f"{name} must be a floating-point tensor; got dtype {x.dtype.name}")
    shape = x.shape
    if shape.rank is not None and (shape.rank != 4 or shape[0] not in (None, 1)):
        raise NSTError(f"{name} must have shape (1, n_H, n_W, n_C); got {_shape_text(x)}")
    if shape.rank is None:
        raise NSTError(f"{name} must have shape (1, n_H, n_W, n_C); got unknown rank")
    return x


def _tensor(x, name):
    try:
        return tf.convert_to_tensor(x)
    except (TypeError, ValueError):
        raise NSTError(f"{name} must be a tensor or array; got {type(x).__name__}") from None


def _outputs(value):
    """Whether ``value`` is the second edition's list of a Keras model's outputs."""
    return isinstance(value, (list, tuple))


def _shape_text(x):
    if x.shape.rank is None:
        return "unknown rank"
    return "(" + ", ".join("None" if d is None else str(d) for d in x.shape.as_list()) + ")"


def _same_shape(a, b, name_a, name_b):
    if not a.shape.is_compatible_with(b.shape):
        raise NSTError(f"{name_a} and {name_b} must have the same shape; got {_shape_text(a)} and {_shape_text(b)}")
    if a.dtype != b.dtype:
        raise NSTError(f"{name_a} and {name_b} must have the same dtype; got {a.dtype.name} and {b.dtype.name}")


def _dims(x):
    """(n_H, n_W, n_C) of a (1, n_H, n_W, n_C) tensor, static where known."""
    static = x.shape.as_list()[1:]
    dynamic = tf.shape(x)[1:]
    return [s if s is not None else dynamic[i] for i, s in enumerate(static)]


def _as_float(n, dtype):
    # Sizes are converted before multiplying: 4*n_H*n_W*n_C overflows int32
    # for large images, and (n_H*n_W)**2 does already at 216x216.
    return tf.cast(n, dtype)


def compute_content_cost(a_C, a_G):
    """Content cost between two activations of one layer.

    Args:
        a_C: activations of the content image, shape (1, n_H, n_W, n_C).
        a_G: activations of the generated image, same shape and dtype.

    The second edition's call, ``compute_content_cost(content_output,
    generated_output)`` with the lists of a Keras model's outputs, is
    accepted too: as there, the last output of each is the content layer's.

    Returns:
        A scalar tensor ``sum((a_C - a_G)**2) / (4 * n_H * n_W * n_C)``.

    Raises:
        NSTError: an activation is not a floating tensor of shape (1, n_H, n_W, n_C), the two differ in
            shape or dtype, or (second edition) they are not both non-empty lists of outputs.
    """
    if _outputs(a_C) or _outputs(a_G):
        if not (_outputs(a_C) and _outputs(a_G) and a_C and a_G):
            raise NSTError("content_output and generated_output must both be non-empty lists of layer outputs")
        a_C, a_G = a_C[-1], a_G[-1]
    a_C = _activation(a_C, "a_C")
    a_G = _activation(a_G, "a_G")
    _same_shape(a_C, a_G, "a_C", "a_G")
    return content_cost_from_sum(tf.reduce_sum(tf.square(a_C - a_G)), *_dims(a_G))


def content_cost_from_sum(squares, n_H, n_W, n_C):
    """The content cost from its sum of squares: ``squares / (4 * n_H * n_W * n_C)``.

    Args:
        squares: ``sum((a_C - a_G)**2)``, a floating scalar tensor.
        n_H, n_W, n_C: the layer's sizes (Python ints or integer scalars).

    Returns:
        A scalar tensor in ``squares``' dtype.
    """
    n_H, n_W, n_C = (_as_float(n, squares.dtype) for n in (n_H, n_W, n_C))
    return squares / (4.0 * n_H * n_W * n_C)


def gram_matrix(A):
    """Gram (style) matrix of an unrolled activation.

    Args:
        A: matrix of shape (n_C, n_H*n_W), one row per channel.

    Returns:
        ``A @ A^T``, shape (n_C, n_C), computed as the course writes it,
        ``tf.matmul(A, tf.transpose(A))``. Its float32 values pass the
        course's own check (``np.isclose``) on every CPU; their last bits
        depend on the CPU's arithmetic (vector width, FMA, oneDNN's kernel),
        as the course's own do.

    Raises:
        NSTError: ``A`` cannot be converted to a tensor or is not of rank 2.
    """
    A = _tensor(A, "A")
    if A.shape.rank != 2:
        raise NSTError(f"A must have shape (n_C, n_H*n_W); got {_shape_text(A)}")
    return tf.matmul(A, tf.transpose(A))


def _unroll(a):
    """The course's unrolling: (1, n_H, n_W, n_C) -> (n_C, n_H*n_W)."""
    return tf.transpose(tf.reshape(a, [-1, _dims(a)[2]]))


def style_gram(a):
    """Gram matrix of a (1, n_H, n_W, n_C) activation, shape (n_C, n_C).

    The same matrix as ``gram_matrix`` of the course's unrolled activation,
    but computed as ``F^T F`` with ``F = reshape(a, (n_H*n_W, n_C))`` and
    ``transpose_a``, which spares materializing the transpose in every
    optimization step. The two can differ in the last bit of float32.

    Raises:
        NSTError: ``a`` is not a floating tensor of shape (1, n_H, n_W, n_C).
    """
    a = _activation(a, "a")
    unrolled = tf.reshape(a, [-1, _dims(a)[2]])
    return tf.matmul(unrolled, unrolled, transpose_a=True)


def _layer_normalizer(a):
    """The course's normalizer of a (1, n_H, n_W, n_C) activation, in its dtype."""
    return style_normalizer(*_dims(a), dtype=a.dtype)


def style_normalizer(n_H, n_W, n_C, dtype=tf.float32):
    """``4 * n_C**2 * (n_H * n_W)**2``: what the course divides a layer's squared Gram difference by.

    The Keras L-BFGS variant divides by the image's ``4 * 3**2 * (H W)**2``:
    ``style_normalizer(H, W, 3)``. Sizes are Python ints or integer scalars;
    the result is a scalar tensor of ``dtype``.
    """
    n_H, n_W, n_C = (_as_float(n, dtype) for n in (n_H, n_W, n_C))
    return 4.0 * tf.square(n_C) * tf.square(n_H * n_W)


def gram_distance(gram_S, gram_G, normalizer):
    """``sum((gram_S - gram_G)**2) / normalizer``: one layer's style cost from its Gram matrices.

    Args:
        gram_S, gram_G: Gram matrices, shape (n_C, n_C), one dtype.
        normalizer: what the squared difference is divided by (the course's
            ``4 * n_C**2 * (n_H*n_W)**2``), cast to their dtype.

    Returns:
        A scalar tensor.
    """
    return tf.reduce_sum(tf.square(gram_S - gram_G)) / tf.cast(normalizer, gram_G.dtype)


def _gram_distance(gram_S, gram_G, a_G):
    return gram_distance(gram_S, gram_G, _layer_normalizer(a_G))


def layer_style_cost_from_gram(gram_S, a_G, normalizer=None):
    """Style cost of one layer against a precomputed style Gram matrix.

    Args:
        gram_S: Gram matrix of the style image's activation, shape (n_C, n_C).
        a_G: activation of the generated image, shape (1, n_H, n_W, n_C).
        normalizer: what the squared difference is divided by; by default
            the course's ``4 * n_C**2 * (n_H*n_W)**2`` of ``a_G``.

    Returns:
        A scalar tensor ``sum((gram_S - G_G)**2) / normalizer``, with
        ``G_G = style_gram(a_G)``.

    Raises:
        NSTError: ``a_G`` is not a floating tensor of shape (1, n_H, n_W, n_C), or ``gram_S`` is not of shape
            (n_C, n_C) or not of ``a_G``'s dtype.
    """
    a_G = _activation(a_G, "a_G")
    gram_S = tf.convert_to_tensor(gram_S)
    n_C_static = a_G.shape[-1]
    if gram_S.shape.rank != 2 or (
        n_C_static is not None and not gram_S.shape.is_compatible_with([n_C_static, n_C_static])
    ):
        raise NSTError(f"gram_S must have shape (n_C, n_C) = ({n_C_static}, {n_C_static}); got {_shape_text(gram_S)}")
    if gram_S.dtype != a_G.dtype:
        raise NSTError(f"gram_S and a_G must have the same dtype; got {gram_S.dtype.name} and {a_G.dtype.name}")
    return gram_distance(gram_S, style_gram(a_G), _layer_normalizer(a_G) if normalizer is None else normalizer)


def compute_layer_style_cost(a_S, a_G):
    """Style cost of one layer.

    Each activation is unrolled as the course does, reshaped to
    (n_H*n_W, n_C) and transposed to (n_C, n_H*n_W), and its Gram matrix
    taken with ``gram_matrix``.

    Args:
        a_S: activation of the style image, shape (1, n_H, n_W, n_C).
        a_G: activation of the generated image, same shape and dtype.

    Returns:
        A scalar tensor ``sum((G_S - G_G)**2) / (4 * n_C**2 * (n_H*n_W)**2)``.

    Raises:
        NSTError: an activation is not a floating tensor of shape (1, n_H, n_W, n_C), or the two differ in
            shape or dtype.
    """
    a_S = _activation(a_S, "a_S")
    a_G = _activation(a_G, "a_G")
    _same_shape(a_S, a_G, "a_S", "a_G")
    return _gram_distance(gram_matrix(_unroll(a_S)), gram_matrix(_unroll(a_G)), a_G)


def weighted_style_cost(style_layers, layer_cost):
    """The weighted sum over layers that every style cost in nst_tf is.

    Args:
        style_layers: sequence of (layer name, weight) pairs.
        layer_cost: function from a layer name to that layer's style cost
            (a scalar tensor).

    Returns:
        A scalar tensor ``sum_l weight_l * layer_cost(l)``, in the layer
        costs' dtype (float32 for no layers).
    """
    J_style = None
    for layer_name, weight in style_layers:
        J_layer = layer_cost(layer_name)
        term = _to(weight, J_layer.dtype) * J_layer
        J_style = term if J_style is None else J_style + term
    return J_style if J_style is not None else tf.constant(0.0)


def compute_style_cost(style_activations, generated_activations, style_layers=STYLE_LAYERS):
    """Weighted style cost over several layers.

    Args:
        style_activations: mapping from layer name to the style image's
            activation at that layer, shape (1, n_H, n_W, n_C).
        generated_activations: mapping from layer name to the generated
            image's activation, same shapes.
        style_layers: sequence of (layer name, weight) pairs.

    The second edition's call, ``compute_style_cost(style_image_output,
    generated_image_output, STYLE_LAYERS)`` with the lists of a Keras
    model's outputs, is accepted too: as there, every output but the last
    (the content layer's) is a style layer, paired with ``style_layers`` by
    position (their counts must agree). The first edition's
    ``compute_style_cost(model, STYLE_LAYERS)`` ran the style image through a
    TF1 session and has no TF2 form; its equivalent is
    ``compute_style_cost(model(style, layers=names), model(generated, layers=names))``.

    Returns:
        A scalar tensor ``sum_l weight_l * compute_layer_style_cost(S[l], G[l])``.

    Raises:
        NSTError: the first edition's ``(model, STYLE_LAYERS)`` call; arguments that are neither mappings nor
            (both) lists of outputs; a layer of ``style_layers`` missing from a mapping; output counts that
            disagree with ``style_layers``; or activations ``compute_layer_style_cost`` refuses.
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
        """One layer's style cost; raises ``NSTError`` when either mapping lacks ``layer_name``."""
        for mapping, which in ((style_activations, "style"), (generated_activations, "generated")):
            if layer_name not in mapping:
                raise NSTError(f"{which} activations have no layer {layer_name!r}")
        return compute_layer_style_cost(style_activations[layer_name], generated_activations[layer_name])

    return weighted_style_cost(style_layers, layer_cost)


def _is_style_layers(value):
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], str) for p in value)
    )


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
    if dtype is None:
        return None
    dtype = tf.as_dtype(dtype)
    return dtype if dtype.is_floating else None


def total_cost(J_content, J_style, alpha=10, beta=40):
    """Total cost ``alpha * J_content + beta * J_style``, as a tf.Tensor.

    The dtype is that of a floating tensor or array argument (both must
    agree); plain Python numbers give float32, TensorFlow's default.

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
    """Total-variation regularizer of an image, shape (1, H, W, C).

    ``form="squared"``: the sum of squared differences between every pair of
    vertically or horizontally neighbouring pixels, over all channels,
    ``sum (x[i+1, j] - x[i, j])**2 + sum (x[i, j+1] - x[i, j])**2``.

    ``form="power"``: over the top-left (H-1) x (W-1) pixels,
    ``sum ((x[i, j] - x[i+1, j])**2 + (x[i, j] - x[i, j+1])**2) ** 1.25``,
    the form of the Keras L-BFGS variant.

    Returns a scalar tensor in the image's dtype.

    Raises:
        NSTError: ``form`` is not one of ``TV_FORMS``, or ``image`` is not a floating tensor of shape
            (1, H, W, C).
    """
    if form not in TV_FORMS:
        raise NSTError(f"form must be one of {', '.join(TV_FORMS)}; got {form!r}")
    x = _activation(image, "image")
    if form == "squared":
        return tf.reduce_sum(tf.square(x[:, 1:] - x[:, :-1])) + tf.reduce_sum(tf.square(x[:, :, 1:] - x[:, :, :-1]))
    corner = x[:, :-1, :-1]
    a = tf.square(corner - x[:, 1:, :-1])
    b = tf.square(corner - x[:, :-1, 1:])
    return tf.reduce_sum(tf.pow(a + b, 1.25))


def temporal_cost(image, warped, weights):
    """Ruder et al.'s temporal consistency cost of a video frame, shape (1, H, W, C).

    ``sum_k sum(weights[k] * (image - warped[k])**2) / (H W C)``: for each
    earlier stylized frame ``k`` warped onto this one (``warped``, shape
    (K, H, W, C)), the mean over the frame's values of the squared
    difference, weighted per pixel by ``weights`` (shape (K, H, W, 1), 0 where
    the flow is not trusted: disocclusions and motion boundaries); summed
    over the K frames. Zero for an image equal to its warped predecessors
    where they are trusted.

    Returns a scalar tensor in the image's dtype.

    Raises:
        NSTError: ``image`` is not a floating tensor of shape (1, H, W, C), or ``warped`` and
            ``weights`` are not (K, H, W, C) and (K, H, W, 1) of its sizes and dtype, with the same K.
    """
    x = _activation(image, "image")
    warped, weights = _tensor(warped, "warped"), _tensor(weights, "weights")
    for name, tensor, channels in (("warped", warped, x.shape[-1]), ("weights", weights, 1)):
        expected = tf.TensorShape([None, *x.shape[1:3], channels])
        if tensor.dtype != x.dtype or not tensor.shape.is_compatible_with(expected):
            raise NSTError(
                f"{name} must have shape (K, {', '.join(str(d) for d in expected[1:])}) and dtype {x.dtype.name}; "
                f"got {_shape_text(tensor)} {tensor.dtype.name}"
            )
    if warped.shape[0] is not None and weights.shape[0] is not None and warped.shape[0] != weights.shape[0]:
        raise NSTError(f"warped holds {warped.shape[0]} frames and weights {weights.shape[0]}; they must match")
    size = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), x.dtype)
    return tf.reduce_sum(weights * tf.square(x - warped)) / size
