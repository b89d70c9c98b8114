"""Guided Gram matrices and style costs (Gatys et al. 2017): the style statistics of a region.

A guided Gram matrix weights each position by its mask ``m`` in [0, 1]: ``G = (F m)^T (F m) = sum_p m_p^2 F_p F_p^T``
with ``F`` the (positions, n_C) activation, a sum over positions like the course's Gram matrix (so it adds up over
tiles). Its normalization replaces the course's count of positions ``n_H n_W`` by the mask's ``M = sum_p m_p^2``:

- course form: ``guided_layer_style_cost(a_S, a_G, m_S, m_G) = ||G_S / M_S - G_G / M_G||^2 / (4 n_C^2)``, which with
  all-ones masks on activations of one size is the course's ``compute_layer_style_cost`` exactly;
- CS231n form: ``guided_gram_matrix(features, mask)`` divided by ``M * C`` (``gram_matrix``'s ``H W C`` for an
  all-ones mask) and ``guided_style_loss``, ``style_loss`` with guided Gram matrices.
"""

from .quiet import tensorflow as tf  # without its start-up lines

from ..ground.errors import NSTError
from .costs import as_tensor, shape_text


def _features(x, name):
    x = as_tensor(x, name)
    if not x.dtype.is_floating or x.shape.rank != 4:
        raise NSTError(f"{name} must be a floating-point tensor of shape (N, H, W, C); got {shape_text(x)}")
    return x


def _mask(mask, features, name):
    """``mask`` (H, W), (H, W, 1) or (N, H, W, 1) as a tensor (N or 1, H, W, 1) in ``features``' dtype."""
    mask = tf.cast(as_tensor(mask, name), features.dtype)
    if mask.shape.rank == 2:
        mask = mask[..., None]
    if mask.shape.rank == 3:
        mask = mask[None]
    expected = tf.TensorShape([None, *features.shape[1:3], 1])
    if mask.shape.rank != 4 or not mask.shape.is_compatible_with(expected):
        raise NSTError(f"{name} must have the features' (H, W) = {tuple(features.shape[1:3])}; got {shape_text(mask)}")
    return mask


def guided_gram(a, mask):
    """``sum_p m_p^2 F_p F_p^T`` (n_C, n_C) of an activation ``a`` (1, n_H, n_W, n_C) and its ``mask`` (1, n_H, n_W,
    1): the course's ``style_gram`` of ``a * mask``."""
    weighted = tf.reshape(a * tf.cast(mask, a.dtype), [-1, tf.shape(a)[-1]])
    return tf.matmul(weighted, weighted, transpose_a=True)


def mask_mass(mask, dtype=tf.float32):
    """``M = sum m^2`` of a mask: the positions a guided Gram matrix counts (``n_H n_W`` for all ones)."""
    return tf.reduce_sum(tf.square(tf.cast(mask, dtype)))


def guided_layer_style_cost(a_S, a_G, mask_S, mask_G):
    """``||G_S / M_S - G_G / M_G||^2 / (4 n_C^2)``, a scalar tensor: the course's layer style cost over the regions
    ``mask_S`` of the style's activation ``a_S`` and ``mask_G`` of the generated ``a_G`` (both (1, n_H, n_W, n_C),
    sizes may differ; masks (n_H, n_W) of each). All-ones masks of one size give ``compute_layer_style_cost``."""
    a_S, a_G = _features(a_S, "a_S"), _features(a_G, "a_G")
    mask_S, mask_G = _mask(mask_S, a_S, "mask_S"), _mask(mask_G, a_G, "mask_G")
    n_C = tf.cast(tf.shape(a_G)[-1], a_G.dtype)
    S = guided_gram(a_S, mask_S) / mask_mass(mask_S, a_S.dtype)
    G = guided_gram(a_G, mask_G) / mask_mass(mask_G, a_G.dtype)
    return tf.reduce_sum(tf.square(S - G)) / (4.0 * tf.square(n_C))


def guided_gram_matrix(features, mask, normalize=True):
    """CS231n's ``gram_matrix`` over a region: (N, C, C) of ``(F m)^T (F m)`` for NHWC ``features`` (N, H, W, C)
    and ``mask`` (H, W), (H, W, 1) or (N, H, W, 1); with ``normalize`` divided by ``sum(m^2) * C`` (an all-ones
    mask gives ``gram_matrix(features)``). ``NSTError`` for other shapes."""
    features = _features(features, "features")
    if not isinstance(normalize, bool):
        raise NSTError(f"normalize must be True or False; got {normalize!r:.80}")
    mask = _mask(mask, features, "mask")
    weighted = features * mask
    shape = tf.shape(features)
    flat = tf.reshape(weighted, tf.stack([shape[0], shape[1] * shape[2], shape[3]]))
    gram = tf.matmul(flat, flat, transpose_a=True)
    if normalize:
        masses = tf.reduce_sum(tf.square(mask), axis=[1, 2, 3]) * tf.cast(shape[3], features.dtype)
        gram = gram / masses[:, None, None]
    return gram


def guided_style_loss(feats, style_layers, style_targets, style_weights, masks):
    """CS231n's ``style_loss`` over a region: ``sum_i style_weights[i] * sum((G_i - style_targets[i])**2)`` with
    ``G_i = guided_gram_matrix(feats[style_layers[i]], masks[i])``; ``masks``: one per layer, at its grid.
    ``NSTError`` for lists of unequal or no length, or shapes that do not fit."""
    lists = [list(x) if isinstance(x, (list, tuple)) else None for x in (style_layers, style_targets, masks)]
    weights = list(style_weights) if isinstance(style_weights, (list, tuple)) else None
    if None in lists or weights is None or not lists[0] or len({len(x) for x in (*lists, weights)}) != 1:
        raise NSTError("style_layers, style_targets, style_weights and masks must be lists with one entry per layer")
    loss = None
    for key, target, weight, mask in zip(*lists[:2], weights, lists[2]):
        gram = guided_gram_matrix(feats[key], mask)
        target = tf.cast(as_tensor(target, "style_targets"), gram.dtype)
        if not gram.shape.is_compatible_with(target.shape):
            raise NSTError(f"style_targets for layer {key!r:.40} must have shape {shape_text(gram)}")
        term = tf.cast(weight, gram.dtype) * tf.reduce_sum(tf.square(gram - target))
        loss = term if loss is None else loss + term
    return loss
