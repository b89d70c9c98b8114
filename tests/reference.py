"""Small, slow, obviously-correct NumPy versions of what nst_tf computes."""

import numpy as np


def content_cost(a_C, a_G):
    _, n_H, n_W, n_C = a_G.shape
    return np.sum((np.float64(a_C) - a_G) ** 2) / (4 * n_H * n_W * n_C)


def gram(A):
    A = np.float64(A)
    return A @ A.T


def layer_style_cost(a_S, a_G):
    _, n_H, n_W, n_C = a_G.shape

    def unroll(a):
        return np.float64(a).reshape(n_H * n_W, n_C).T

    return np.sum((gram(unroll(a_S)) - gram(unroll(a_G))) ** 2) / (4 * n_C**2 * (n_H * n_W) ** 2)


def conv_relu(x, kernel, bias):
    """3x3 correlation, stride 1, zero padding 1, plus bias, then ReLU; x is (H, W, C)."""
    h, w, _ = x.shape
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + h, dx : dx + w, :] @ kernel[dy, dx]
    return np.maximum(out + bias, 0)


def avg_pool(x):
    """2x2 average pooling, stride 2, SAME: windows cut by the border average what they hold."""
    h, w, c = x.shape
    out = np.zeros(((h + 1) // 2, (w + 1) // 2, c))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(axis=(0, 1))
    return out


def max_pool(x):
    """2x2 max pooling, stride 2, VALID (Keras' MaxPooling2D((2, 2))): an odd last row or column is dropped."""
    h, w, c = x.shape
    out = np.zeros((h // 2, w // 2, c))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].max(axis=(0, 1))
    return out


def vgg_forward(image, conv, pooling="avg"):
    """Every conv and pooling activation of VGG-19 for image (H, W, 3), from {name: (kernel, bias)}.

    Pooling outputs are named "avgpool1" ... "avgpool5" whatever ``pooling`` ("avg" or "max") is.
    """
    pool = {"avg": avg_pool, "max": max_pool}[pooling]
    x = np.float64(image)
    out = {}
    for block, convs in enumerate((2, 2, 4, 4, 4), start=1):
        for k in range(1, convs + 1):
            name = f"conv{block}_{k}"
            x = conv_relu(x, *conv[name])
            out[name] = x
        x = pool(x)
        out[f"avgpool{block}"] = x
    return out


def warp(image, flow):
    """out[y, x] = image at (y + flow_y, x + flow_x), bilinear, sources clamped to the image; (H, W, C)."""
    h, w, _ = image.shape
    out = np.zeros(image.shape)
    for y in range(h):
        for x in range(w):
            sy = min(max(y + flow[y, x, 1], 0), h - 1)
            sx = min(max(x + flow[y, x, 0], 0), w - 1)
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            fy, fx = sy - y0, sx - x0
            top = image[y0, x0] * (1 - fx) + image[y0, x1] * fx
            bottom = image[y1, x0] * (1 - fx) + image[y1, x1] * fx
            out[y, x] = top * (1 - fy) + bottom * fy
    return out


def temporal_cost(image, warped, weights):
    """sum_k sum(weights[k] * (image - warped[k])^2) / (H W C); image (H, W, C), warped (K, H, W, C)."""
    image = np.float64(image)
    return sum(np.sum(c[..., None] * (image - w) ** 2) for w, c in zip(warped, weights)) / image.size
