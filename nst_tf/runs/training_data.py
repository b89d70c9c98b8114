"""The content images a fast style network trains on: ``list_training_images`` (the folder's image files, each
header checked; the others counted) and ``training_batches`` (the ``tf.data`` pipeline: decode, resize, random
crop, batch, prefetch).

The batch of step ``s`` is a function of (seed, s) alone: sample ``k = s * B + position`` is image
``order(k // N)[k % N]`` of an epoch's order, a stateless shuffle seeded by (seed, epoch), cropped at a stateless
random place seeded by (seed, k). So a run resumed at step ``s`` sees exactly the batches the unbroken run saw.
"""

import os
from typing import NamedTuple

import numpy as np

from ..ground.errors import ImageError, NSTError, quoted
from ..ground.files import is_image_file
from ..tensors.images import image_size, read_image

#: The smallest shorter side of a content image: smaller ones are tiny thumbnails or icons, not photos.
MIN_CONTENT_SIDE = 16
#: The most pixels a content image may have: each is decoded whole, several at once.
MAX_CONTENT_PIXELS = 50_000_000


class TrainingImages(NamedTuple):
    """A folder's usable images (``paths``, in name order) and the files passed over, by reason (``skipped``:
    {reason: count})."""

    paths: tuple
    skipped: dict

    @property
    def skipped_count(self):
        return sum(self.skipped.values())


def _reason(path):
    """Why image file ``path`` is passed over, or None when its header is fine."""
    try:
        width, height = image_size(path)
    except ImageError:
        return "damaged or unreadable"
    if min(width, height) < MIN_CONTENT_SIDE:
        return f"under {MIN_CONTENT_SIDE} pixels a side"
    if width * height > MAX_CONTENT_PIXELS:
        return f"over {MAX_CONTENT_PIXELS:,} pixels"
    return None


def list_training_images(folder, option="--content_dir"):
    """The ``TrainingImages`` of ``folder`` (not its subfolders; hidden files aside): the regular files whose
    first bytes are an image's and whose header reads with a size from ``MIN_CONTENT_SIDE`` to
    ``MAX_CONTENT_PIXELS`` pixels.

    Raises:
        NSTError: in one line naming ``option``, for a missing folder, one that cannot be listed, or holds no
            usable image (saying what its files were).
    """
    shown = f"{option} {quoted(folder)}"
    if not os.path.isdir(folder):
        what = "is not a folder" if os.path.lexists(folder) else "no such folder"
        raise NSTError(f"{shown}: {what}; give a folder of photos (COCO's train2014/, say)")
    try:
        names = sorted(name for name in os.listdir(folder) if not name.startswith("."))
    except OSError as error:
        raise NSTError(f"{shown}: cannot be listed: {error.strerror or error}") from None
    paths, skipped, others = [], {}, 0
    for name in names:
        path = os.path.join(folder, name)
        if not is_image_file(path):  # a FIFO is refused, never waited on
            others += not os.path.isdir(path)
            continue
        reason = _reason(path)
        if reason is None:
            paths.append(path)
        else:
            skipped[reason] = skipped.get(reason, 0) + 1
    if not paths:
        found = [f"{count} {reason}" for reason, count in skipped.items()] + ([f"{others} not images"] * bool(others))
        what = "; its files: " + ", ".join(found) if found else ": it is empty"
        raise NSTError(f"{shown} holds no usable image{what}; give a folder of photos")
    if others:
        skipped["not images"] = others
    return TrainingImages(tuple(paths), skipped)


def _decoded(path, side, failures):
    """The image at ``path`` as (h, w, 3) uint8, decoded reduced where it is far larger than ``side`` needs
    (``read_image``'s target); a file damaged past its header is appended to ``failures`` (a list, or None) and
    given as a (1, 1, 3) image, which the pipeline drops."""
    path = os.fsdecode(path)
    try:
        width, height = image_size(path)
        scale = side / min(width, height)
        return read_image(path, (max(1, round(width * scale)), max(1, round(height * scale))))
    except (ImageError, NSTError):
        if failures is not None:
            failures.append(path)
        return np.zeros((1, 1, 3), np.uint8)


def resized_crop(pixels, side, seed=None):
    """(side, side, 3) float32 pixels from (h, w, 3) ``pixels``: resized (bilinear, antialiased) to the shorter
    side ``side``, then cut at a stateless random place of ``seed`` (a (2,) int64 tensor), or the centre."""
    from ..tensors.quiet import tensorflow as tf  # without its start-up lines; the listing needs none

    shape = tf.cast(tf.shape(pixels)[:2], tf.float32)
    size = tf.cast(tf.math.ceil(shape * (float(side) / tf.reduce_min(shape))), tf.int32)
    size = tf.maximum(size, side)
    image = tf.image.resize(tf.cast(pixels, tf.float32), size, antialias=True)
    if seed is None:
        top, left = (size[0] - side) // 2, (size[1] - side) // 2
        return image[top : top + side, left : left + side, :]
    return tf.image.stateless_random_crop(image, [side, side, 3], seed)


def load_pixels(path, side, failures=None):
    """The image at ``path`` (a string tensor) decoded with ``_decoded`` in the pipeline: (h, w, 3) uint8."""
    from ..tensors.quiet import tensorflow as tf  # without its start-up lines; the listing needs none

    pixels = tf.numpy_function(lambda p: _decoded(p, side, failures), [path], tf.uint8, stateful=False)
    return tf.ensure_shape(pixels, [None, None, 3])


def training_batches(paths, side, batch_size, seed, first_step=0, steps=None, failures=None):
    """The ``tf.data.Dataset`` of (batch_size, side, side, 3) float32 pixel batches in [0, 255] from step
    ``first_step`` on (``steps`` of them, default: without end); see the module for the order and crops.
    A file that fails to decode past its header is dropped, which shifts the batches after it; its path is
    appended to ``failures`` (a list) each time."""
    from ..tensors.quiet import tensorflow as tf  # without its start-up lines; the listing needs none

    paths = tf.constant(list(paths))
    count = tf.cast(tf.size(paths), tf.int64)
    first = first_step * batch_size
    samples = tf.data.Dataset.range(first, np.iinfo(np.int64).max if steps is None else first + steps * batch_size)

    def sample(k):
        epoch_seed = tf.stack([tf.constant(seed, tf.int64), k // count])
        order = tf.random.experimental.stateless_shuffle(tf.range(count), seed=epoch_seed)
        pixels = load_pixels(tf.gather(paths, order[k % count]), side, failures)
        return pixels, tf.stack([tf.constant(seed, tf.int64), k])

    def crop(pixels, crop_seed):
        return resized_crop(pixels, side, crop_seed)

    images = samples.map(sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    images = images.filter(lambda pixels, _: tf.shape(pixels)[0] > 1)
    images = images.map(crop, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return images.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def centre_crops(paths, side):
    """(n, side, side, 3) float32 pixels of ``paths``, each resized to the shorter side ``side`` and cropped at the
    centre (the samples a training shows)."""
    from ..tensors.quiet import tensorflow as tf  # without its start-up lines; the listing needs none

    return tf.stack([resized_crop(read_image(path), side) for path in paths])
