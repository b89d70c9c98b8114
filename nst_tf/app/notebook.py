"""One call for a notebook: ``stylize_image`` runs a preset on two images with a progress bar (tqdm's, which
Jupyter draws as a widget), optionally a preview that updates in place, and returns the image and its costs.

Built on the library's pieces, as the command is: the preset (``runs.presets``), the weights readers, the job's
start-up (``jobs.build.start_up``: TensorFlow quietly, the network, the objective) and ``StyleTransfer``'s
reports and ticks. tqdm (``pip install "nst_tf[notebook]"``), IPython and matplotlib are optional and imported
only when used.
"""

import dataclasses
import os
import sys

import numpy as np

from ..ground.checks import check_whole
from ..ground.errors import NSTError
from ..loop.progress import Progress, Tick
from ..plan.config import StyleTransferConfig
from ..plan.large_options import MAX_ITERATIONS
from ..plan.locations import find_weights
from ..plan.weights.reader_registry import read_network_weights
from ..runs.presets import PRESETS, Preset, preset as named_preset
from ..tensors.images import (
    ImageSize,
    checked_float32_batch,
    deprocess_image,
    fit_image,
    fit_style,
    read_image,
    reshape_and_normalize_image,
)
from .jobs.build import start_up

#: What to install for the progress bar, said once when tqdm is missing.
TQDM_HINT = 'no progress bar: tqdm is not installed (pip install tqdm, or pip install "nst_tf[notebook]")'


@dataclasses.dataclass(frozen=True)
class StylizeResult:
    """What ``stylize_image`` returns: ``image``, the result as 8-bit RGB pixels (height, width, 3);
    ``iterations``, the reported iterations (0-based); ``costs``, each term's cost by name (``"total"``,
    ``"content"``, ``"style"``, ...) at each of them; ``config``, the run's ``StyleTransferConfig``."""

    image: np.ndarray
    iterations: list
    costs: dict
    config: StyleTransferConfig

    def plot(self, ax=None):
        """The costs against the iterations, one line a term, on a log scale where all are positive; on ``ax``
        (default: a new matplotlib figure's). Returns the axes."""
        if ax is None:
            import matplotlib.pyplot as plt

            _, ax = plt.subplots(figsize=(6, 3.5))
        for name, values in self.costs.items():
            ax.plot(self.iterations, values, marker="o", label=name)
        if all(value > 0 for values in self.costs.values() for value in values):
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("cost")
        ax.legend()
        return ax


def stylize_image(
    content,
    style,
    preset="first_edition",
    *,
    iterations=None,
    preview_every=None,
    weights=None,
    size=None,
    progress=True,
    out=None,
):
    """Stylizes ``content`` with ``style`` as ``preset`` does, showing its progress; returns a ``StylizeResult``.

    Args:
        content, style: image file paths, or 8-bit RGB pixels (height, width, 3) (``nst_tf.read_image``'s),
            brought to the preset's size (``size``); or images normalized as the preset does, (1, h, w, 3),
            taken as they are. ``style`` may be a list of styles.
        preset: a name of ``nst_tf.presets.PRESETS``, a ``Preset``, or a ``StyleTransferConfig`` (run on the
            first edition's network and image sizing).
        iterations: the run's iterations (default: the config's ``epochs``).
        preview_every: show the image every that many iterations, updated in place, under IPython (Jupyter);
            the run then reports, and records its costs, every that many iterations (default: the config's
            ``print_every``).
        weights: the network weights file (default: the preset's, in ``pretrained-model/`` or ``$NST_TF_HOME``, as
            the command looks for it).
        size: an ``ImageSize`` (default: the preset's).
        progress: draw the progress bar (tqdm's ``tqdm.auto``: a widget in Jupyter, a text bar elsewhere;
            without tqdm, a line per report); ``out``: the stream for the text bar, lines and warnings
            (default ``sys.stderr``).

    Raises:
        NSTError: a bad argument or image (``ImageError``), an unreadable weights file (``WeightsFileError``),
            or a total cost that stopped being finite (``NonFiniteCostError``).
    """
    out = sys.stderr if out is None else out
    chosen = _preset(preset)
    config = _config(chosen.config, iterations, preview_every)
    size = chosen.size if size is None else size
    if not isinstance(size, ImageSize):
        raise NSTError(f"size must be an ImageSize; got {type(size).__name__}")
    content = _content(content, chosen, size)
    styles = [_style(image, chosen, size, content.shape[1:3]) for image in _listed(style)]
    network_weights = read_network_weights(config.network, find_weights(chosen.model) if weights is None else weights)
    shape = tuple(content.shape[1:3])
    started = start_up(config, network_weights, chosen.pooling, {shape: None}, out)
    objective = started.make_objective(started.model, content, styles, config, shape)
    from ..loop.optimize import StyleTransfer  # here: nst_tf.stylize_image loads no TensorFlow until called

    with started.deterministic():
        history = _follow(StyleTransfer(objective, config).run(ticks=True), config, preview_every, progress, out)
    iterations, costs, last = history
    return StylizeResult(deprocess_image(last.image, config.normalization), iterations, costs, config)


def _preset(preset):
    """``preset`` as a ``Preset``: by name, as it is, or the first edition's with a ``StyleTransferConfig``."""
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, StyleTransferConfig):
        return dataclasses.replace(PRESETS["first_edition"], config=preset)
    if isinstance(preset, str):
        return named_preset(preset)
    raise NSTError(f"preset must be a preset's name, a Preset or a StyleTransferConfig; got {type(preset).__name__}")


def _config(config, iterations, preview_every):
    """``config`` with ``iterations`` as its epochs and ``preview_every`` as its reports' spacing, where given."""
    changes = {}
    if iterations is not None:
        changes["epochs"] = check_whole("iterations", iterations, most=MAX_ITERATIONS)
    if preview_every is not None:
        changes["print_every"] = check_whole("preview_every", preview_every, most=MAX_ITERATIONS)
    return dataclasses.replace(config, **changes)


def _listed(style):
    """One style or a list (or tuple) of styles, as a list."""
    return list(style) if isinstance(style, (list, tuple)) else [style]


def _pixels_or_batch(image, name):
    """``(pixels, None)`` for a path or an 8-bit (h, w, 3) array; ``(None, batch)`` for a normalized (1, h, w, 3)
    one; ``NSTError`` naming ``name`` for anything else."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image), None
    array = np.asarray(image)
    if array.ndim == 4:
        return None, checked_float32_batch(array, name)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise NSTError(
            f"{name} must be an image path, 8-bit RGB pixels (height, width, 3) or a normalized (1, height, "
            f"width, 3) image; got an array of shape {array.shape} and type {array.dtype}"
        )
    return array, None


def _content(image, preset, size):
    """The content image, normalized as ``preset`` does, at ``size`` (a normalized batch as it is)."""
    pixels, batch = _pixels_or_batch(image, "content")
    if batch is not None:
        return batch
    height, width = size.of(pixels.shape[:2])
    return reshape_and_normalize_image(fit_image(pixels, width, height, size.content_fit), preset.config.normalization)


def _style(image, preset, size, output):
    """A style image, normalized as ``preset`` does, fitted as its style images are for an output of ``output``
    (height, width) (a normalized batch as it is)."""
    pixels, batch = _pixels_or_batch(image, "style")
    if batch is not None:
        return batch
    large = preset.large
    fitted = fit_style(pixels, tuple(output), size.content_fit, large.style_scale, large.style_size)
    return reshape_and_normalize_image(fitted, preset.config.normalization)


def _follow(items, config, preview_every, progress, out):
    """Follows a run's ``Progress`` and ``Tick`` items: moves the bar, records the costs, updates the preview.
    Returns ``(iterations, {name: costs}, the last Progress)``."""
    bar = _bar(config.epochs, out) if progress else _NoBar()
    preview = _Preview() if preview_every is not None else None
    iterations, costs, last = [], {}, None
    try:
        for item in items:
            if isinstance(item, Tick):
                bar.update(item.iterations - bar.n)
                continue
            if not isinstance(item, Progress):
                continue
            last = item
            bar.update(item.iteration + 1 - bar.n)
            iterations.append(item.iteration)
            for name, value in item.costs.items():
                costs.setdefault(name, []).append(float(value))
            bar.set_postfix_str(f"total cost {float(item.total_cost):.4g}")
            if preview is not None:
                preview.show(deprocess_image(item.image, config.normalization))
    finally:
        bar.close()
    return iterations, costs, last


def _bar(total, out):
    """tqdm's bar for ``total`` iterations (``tqdm.auto``: Jupyter's widget where it can); else ``_Lines``."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Lines(total, out)
    return tqdm(total=total, file=out, unit="it", desc="stylize")


class _NoBar:
    """No bar: what ``_follow`` calls on one, doing nothing."""

    n = 0

    def update(self, count):
        self.n += count

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass


class _Lines(_NoBar):
    """Without tqdm: one plain line per report on ``out``, after a line saying how to get the bar."""

    def __init__(self, total, out):
        self.total, self.out = total, out
        out.write(f"nst_tf: {TQDM_HINT}\n")

    def set_postfix_str(self, text):
        self.out.write(f"iteration {self.n}/{self.total}: {text}\n")
        self.out.flush()


class _Preview:
    """The image shown under IPython, updated in place (``display(..., display_id=True)``, then ``update``);
    nothing outside IPython."""

    def __init__(self):
        self.handle = None
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            self.display = None
            return
        self.display = display if get_ipython() is not None else None

    def show(self, pixels):
        if self.display is None:
            return
        import PIL.Image

        image = PIL.Image.fromarray(pixels)
        if self.handle is None:
            self.handle = self.display(image, display_id=True)
        else:
            self.handle.update(image)
