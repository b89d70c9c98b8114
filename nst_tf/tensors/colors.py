"""Keeping the content image's colours (Gatys et al. 2016, "Preserving colour in neural artistic style transfer").

On normalized images (1, H, W, 3), in NumPy, outside the optimization. ``"luminance"``: after optimizing, the
generated image's luminance (Y of YIQ) with the content's chrominance (I, Q). ``"histogram"``: before it, the
style recoloured to the content's RGB mean and covariance, so the optimization paints with the content's palette.
"""

import numpy as np

from ..ground.errors import NSTError
from ..plan.config import COLOR_MODES, CONFIG
from .images import checked_float32_batch

# NTSC RGB -> YIQ (FCC 1953 coefficients); YIQ -> RGB is its exact inverse.
_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ)


def _pixels(image, name):
    return checked_float32_batch(image, name).astype(np.float64) + CONFIG.MEANS


def rgb_to_yiq(rgb):
    """RGB (..., 3) -> YIQ (..., 3), same scale (Y in 0..255 for 8-bit RGB)."""
    return np.asarray(rgb, dtype=np.float64) @ _RGB_TO_YIQ.T


def yiq_to_rgb(yiq):
    """Inverse of ``rgb_to_yiq``."""
    return np.asarray(yiq, dtype=np.float64) @ _YIQ_TO_RGB.T


def preserve_luminance(generated, content):
    """The generated image's luminance with the content image's chrominance: both normalized, of one shape; the
    result normalized float32. ``NSTError`` unless both are finite normalized (1, H, W, 3) images of one shape."""
    generated_rgb = _pixels(generated, "generated")
    content_rgb = _pixels(content, "content")
    if generated_rgb.shape != content_rgb.shape:
        raise NSTError(
            f"generated and content must have the same shape; got {generated_rgb.shape} and {content_rgb.shape}"
        )
    yiq = rgb_to_yiq(content_rgb)
    yiq[..., 0] = rgb_to_yiq(generated_rgb)[..., 0]
    return (yiq_to_rgb(yiq) - CONFIG.MEANS).astype(np.float32)


def _sqrt_and_inverse_sqrt(covariance):
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, 1e-8 * max(values.max(), 1e-12))
    root = np.sqrt(values)
    return (vectors * root) @ vectors.T, (vectors / root) @ vectors.T


def match_color_statistics(style, content):
    """The style image recoloured so its RGB mean and covariance equal the content's:
    ``x' = C_c^(1/2) C_s^(-1/2) (x - mu_s) + mu_c`` over its pixels x (symmetric square roots); normalized
    float32 of the style's shape, clipped to valid pixels. ``NSTError`` unless both are finite normalized
    (1, H, W, 3) images.
    """
    style_rgb = _pixels(style, "style").reshape(-1, 3)
    content_rgb = _pixels(content, "content").reshape(-1, 3)
    mu_s, mu_c = style_rgb.mean(axis=0), content_rgb.mean(axis=0)
    _, inverse_root_s = _sqrt_and_inverse_sqrt(np.cov(style_rgb, rowvar=False))
    root_c, _ = _sqrt_and_inverse_sqrt(np.cov(content_rgb, rowvar=False))
    recoloured = (style_rgb - mu_s) @ (root_c @ inverse_root_s).T + mu_c
    recoloured = np.clip(recoloured, 0, 255).reshape(np.shape(style))
    return (recoloured - CONFIG.MEANS).astype(np.float32)


def recolor_styles(mode, styles, content):
    """The style images as the optimization sees them for ``preserve_colors=mode``: "histogram" recolours each
    with ``match_color_statistics``; None and "luminance" (which acts on the result) leave them as they are.
    ``NSTError`` for a ``mode`` not None or one of ``COLOR_MODES``, or as ``match_color_statistics`` raises."""
    _check_mode(mode)
    if mode == "histogram":
        return [match_color_statistics(style, content) for style in styles]
    return list(styles)


def present(mode, image, content):
    """The generated ``image`` as shown and saved for ``preserve_colors=mode``: "luminance" gives it the
    content's chrominance (``preserve_luminance``); None and "histogram" (which acted on the styles) do not.
    ``NSTError`` for a ``mode`` not None or one of ``COLOR_MODES``, or as ``preserve_luminance`` raises."""
    _check_mode(mode)
    if mode == "luminance":
        return preserve_luminance(image, content)
    return image


def _check_mode(mode):
    if mode is not None and mode not in COLOR_MODES:
        raise NSTError(f"preserve_colors must be None or one of {', '.join(COLOR_MODES)}; got {mode!r}")
