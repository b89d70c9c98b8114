"""Regenerates the two bundled images; see CREDITS.md.

    pip install scikit-image && python images/make_images.py

content.jpg is a 400x300 centre crop of scikit-image's ``data.chelsea()``
photograph (CC0). style.jpg is rendered here from a fixed seed: a marbled
swirl in a blue-and-ochre palette with brush-like streaks, so the project
owns it outright (CC0, like the rest of this folder's generated material).
"""

import os

import imageio.v3 as iio
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WIDTH, HEIGHT = 400, 300

PALETTE = np.array(
    [
        [18, 32, 84],
        [38, 84, 160],
        [96, 150, 204],
        [236, 208, 104],
        [214, 132, 40],
        [250, 240, 196],
    ],
    dtype=np.float64,
)


def content():
    from skimage import data

    photo = data.chelsea()  # 300x451
    left = (photo.shape[1] - WIDTH) // 2
    return photo[:HEIGHT, left : left + WIDTH]


def style(seed=1889):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH] / HEIGHT
    u, v = x.copy(), y.copy()
    for _ in range(5):  # domain warping gives the swirls
        frequency = rng.uniform(1.5, 4.0)
        phase = rng.uniform(0, 2 * np.pi, 2)
        u, v = (
            u + 0.07 * np.sin(2 * np.pi * frequency * v + phase[0]),
            v + 0.07 * np.sin(2 * np.pi * frequency * u + phase[1]),
        )
    field = 0.5 + 0.5 * np.sin(9 * u + 3 * np.sin(5 * v)) * np.cos(4 * v - 2 * u)
    # Brush streaks: noise smeared along the local swirl direction.
    streaks = rng.standard_normal((HEIGHT, WIDTH))
    angle = np.arctan2(np.gradient(v, axis=0), np.gradient(u, axis=1))
    smeared = np.zeros_like(streaks)
    for step in range(-6, 7):
        dy = np.clip((np.arange(HEIGHT)[:, None] + step * np.sin(angle)).round().astype(int), 0, HEIGHT - 1)
        dx = np.clip((np.arange(WIDTH)[None, :] + step * np.cos(angle)).round().astype(int), 0, WIDTH - 1)
        smeared += streaks[dy, dx]
    field = np.clip(field + 0.035 * smeared, 0, 1)
    position = field * (len(PALETTE) - 1)
    low = np.floor(position).astype(int).clip(0, len(PALETTE) - 2)
    weight = (position - low)[..., None]
    image = PALETTE[low] * (1 - weight) + PALETTE[low + 1] * weight
    return np.clip(image, 0, 255).astype(np.uint8)


if __name__ == "__main__":
    iio.imwrite(os.path.join(HERE, "content.jpg"), content(), quality=90)
    iio.imwrite(os.path.join(HERE, "style.jpg"), style(), quality=90)
