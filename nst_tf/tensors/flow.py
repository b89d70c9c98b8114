"""Optical flow between video frames (OpenCV) and Ruder et al.'s per-pixel consistency weights.

``flow_between(frame_t, frame_{t-1})`` brings frame t-1 onto frame t (``warp.warp``); the forward flow checks it.
OpenCV (``pip install "nst_tf[video]"``) is imported at the first flow. NumPy in and out: flow runs on the host,
once per frame, outside the traced step.
"""

import numpy as np

from ..ground.errors import NSTError, last_line
from ..plan.video_options import DIS_PRESETS, FLOW_METHODS


def _cv2():
    try:
        import cv2
    except ImportError:
        raise NSTError('video needs OpenCV: pip install "nst_tf[video]" (or pip install opencv-python-headless)')
    return cv2


def flow_between(a, b, method="dis", preset="medium"):
    """The dense flow ``f`` with ``a[p] ~ b[p + f[p]]``, shape (H, W, 2) float32 (dx, dy), between frames of one
    size, uint8 (H, W, 3) RGB or (H, W) grey, by ``method`` "dis" (dense inverse search, Kroeger et al. 2016;
    ``preset`` one of ``DIS_PRESETS``) or "farneback" (Farneback 2003). ``NSTError`` for an unknown method or
    preset, frames of other sizes or kinds, or OpenCV missing.
    """
    if method not in FLOW_METHODS:
        raise NSTError(f"--flow must be one of {', '.join(FLOW_METHODS)}; got {method!r:.40}")
    if preset not in DIS_PRESETS:
        raise NSTError(f"the DIS preset must be one of {', '.join(DIS_PRESETS)}; got {preset!r:.40}")
    cv2 = _cv2()
    a, b = _grey(cv2, a, "a"), _grey(cv2, b, "b")
    if a.shape != b.shape:
        raise NSTError(f"the frames' sizes differ: {a.shape} and {b.shape}")
    try:
        if method == "dis":
            engine = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
            flow = engine.calc(a, b, None)
        else:
            # Farneback's usual settings: a 3-level pyramid halving each level, 15-pixel windows, 3 iterations.
            flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    except cv2.error as error:  # DIS's patches need frames of a dozen pixels or more
        height, width = a.shape
        raise NSTError(f"optical flow ({method}) failed on frames of {width}x{height}: {last_line(error)}") from None
    return np.asarray(flow, np.float32)


def _grey(cv2, frame, name):
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[-1] != 3):
        raise NSTError(f"frame {name} must be uint8 (H, W, 3) or (H, W); got {frame.dtype} {frame.shape}")
    if min(frame.shape[:2]) < 2:
        raise NSTError(f"frame {name} is too small for optical flow: {frame.shape[:2]}")
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else np.ascontiguousarray(frame)


def consistency_weights(backward, forward):
    """Ruder et al.'s weights for frame t, float32 (H, W): 1 where the flow is trusted, 0 where it is not.

    From ``backward = flow_between(frame_t, frame_{t-1})`` and the ``forward`` flow, both (H, W, 2), a pixel ``p``
    is not trusted (Ruder, Dosovitskiy and Brox 2016, section 3.2, as their checker computes it) where its source
    ``p + u`` (``u = backward[p]``) lies outside frame t-1; where ``|w + u|^2 > 0.01 (|w|^2 + |u|^2) + 0.5`` with
    ``w = forward[p + u]`` (a disocclusion); or where ``|grad u_x|^2 + |grad u_y|^2 > 0.01 |u|^2 + 0.002`` (a
    motion boundary). ``NSTError`` when the flows' shapes differ or are not (H, W, 2).
    """
    backward = np.asarray(backward, np.float32)
    forward = np.asarray(forward, np.float32)
    if backward.ndim != 3 or backward.shape[-1] != 2 or backward.shape != forward.shape or min(backward.shape[:2]) < 2:
        shapes = f"{backward.shape} and {forward.shape}"
        raise NSTError(f"the flows must both have shape (H, W, 2), H and W at least 2; got {shapes}")
    height, width = backward.shape[:2]
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    x, y = cols + backward[..., 0], rows + backward[..., 1]
    inside = (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
    cv2 = _cv2()
    there = cv2.remap(forward, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)  # where each pixel came from
    squares = np.sum((there + backward) ** 2, -1)
    agree = squares <= 0.01 * (np.sum(there**2, -1) + np.sum(backward**2, -1)) + 0.5
    gradients = sum(np.square(g) for channel in (0, 1) for g in np.gradient(backward[..., channel]))
    smooth = gradients <= 0.01 * np.sum(backward**2, -1) + 0.002
    return (inside & agree & smooth).astype(np.float32)


def long_term_weights(weights):
    """Ruder et al.'s long-term weights: from ``{gap: consistency weights (H, W)}`` of the frames ``gap`` back,
    ``{gap: max(weights[gap] - sum of weights[g] for g < gap, 0)}`` (float32): a frame counts only where no
    nearer one is trusted. ``NSTError`` when the weights are not all of one shape."""
    nearer, result = None, {}
    for gap in sorted(weights):
        own = np.asarray(weights[gap], np.float32)
        if nearer is not None and own.shape != nearer.shape:
            raise NSTError(f"the weights of frame -{gap} have shape {own.shape}; the nearer ones {nearer.shape}")
        result[gap] = own if nearer is None else np.maximum(own - nearer, 0.0)
        nearer = own if nearer is None else nearer + own
    return result
