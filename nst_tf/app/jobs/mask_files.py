"""Styles by region on the command line: ``--style_masks``, ``--style_image_masks``, ``--content_mask`` and
``--style_image_layers`` read, checked and attached to the images (``GuidedStyle``, ``GuidedContent``).

A mask is a grey image (colour ones by their luma): its level / 255 is the weight at each pixel. One of another
size is resized when its aspect ratio is its image's within 1% (the content's as sized for the run, or the style
image's), which one note says; any other size, an all-black mask, more entries than style images or a file that
is not an image is refused in one line, before anything is printed or created.
"""

import dataclasses
import hashlib

import numpy as np

from ...ground.errors import NSTError, quoted
from ...ground.files import open_regular
from ...plan.config import parse_style_layers
from ...plan.masks import GuidedContent, GuidedStyle, aspect_matches, fit_mask, mask_at_layer
from ...plan.networks.network_registry import get_network
from ...plan.region_options import NONE, RegionOptions
from ...tensors.images import read_image
from .request import resolve_image

#: ITU-R BT.601 luma weights: a colour mask's grey levels.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class Regions:
    """The checked region options of a command: ``options`` (``RegionOptions``), each style's own ``layers``
    (None: the config's), and the mask paths resolved (None where not given or ``-``)."""

    options: RegionOptions
    layers: tuple
    style_masks: tuple
    image_masks: tuple
    content_mask: str | None
    geometry: tuple = ()  # (config, pooling): each style's layers and where they lie
    _masks: dict = dataclasses.field(default_factory=dict, repr=False)  # path -> mask, read once

    def planning_config(self, config):
        """``config`` with every style's own layers among its style layers: what tiles are planned for."""
        own = [pair for layers in self.layers if layers for pair in layers]
        known = {name for name, _ in config.style_layers}
        extra = tuple(dict.fromkeys((name, 1.0) for name, _ in own if name not in known))
        return dataclasses.replace(config, style_layers=config.style_layers + extra) if extra else config

    def apply(self, content, styles, size):
        """``(content, styles, notes)`` of one content image: its pixels and the style pixels with their masks and
        layers attached (as they were without region options); ``size``: the content's (height, width)."""
        guided, notes = self.guided_styles(styles, [size])
        if self.content_mask is not None:
            content = GuidedContent(content, self._masks[self.content_mask], self.options.mask_erosion)
        return content, guided, notes

    def guided_styles(self, styles, sizes):
        """``(styles, notes)``: the style images (pixels or normalized, (h, w, 3) or (1, h, w, 3)) as
        ``GuidedStyle``s for content images of each of ``sizes`` (height, width), one note naming the masks that
        are resized; ``NSTError`` for a mask not of its image's aspect ratio within 1%. Styles as they were
        without region options. The masks are read once, here; the objective fits them to each image."""
        if not self.options.given:
            return styles, []
        self._read()
        resized = set()
        for path in (*self.style_masks, self.content_mask):
            for size in sizes:
                _check_aspect(self._masks, path, size, resized)
        for path, style in zip(self.image_masks, styles):
            _check_aspect(self._masks, path, np.shape(style)[-3:-1], resized)
        for path, layers in zip(self.style_masks, self.layers):
            for size in sizes:
                self._check_left(path, size, layers)
        guided = self.wrap(styles)
        notes = []
        if resized:
            notes.append(
                f"{'mask' if len(resized) == 1 else 'masks'} {', '.join(sorted(resized))} resized to "
                "their images' sizes (aspect ratios within 1%)"
            )
        return guided, notes

    def wrap(self, styles, indices=None):
        """``styles`` as ``GuidedStyle``s, each with the masks and layers of its position among the command's
        style images (``indices``: those positions, default 0, 1, ...), read by ``guided_styles`` first."""
        indices = range(len(styles)) if indices is None else indices
        return [
            GuidedStyle(
                style,
                self._masks.get(self.style_masks[i]),
                self._masks.get(self.image_masks[i]),
                self.layers[i],
                self.options.mask_erosion,
            )
            for style, i in zip(styles, indices)
        ]

    def settings(self):
        """What the regions change in a result, for a manifest: ``{"regions": ...}`` (the masks' SHA-256 digests,
        the layers, the erosion), or ``{}`` without region options (earlier manifests stay valid)."""
        if not self.options.given:
            return {}
        return {
            "regions": {
                "style_masks": [_digest(path) for path in self.style_masks],
                "style_image_masks": [_digest(path) for path in self.image_masks],
                "content_mask": _digest(self.content_mask),
                "layers": [None if layers is None else [list(pair) for pair in layers] for layers in self.layers],
                "erosion": self.options.mask_erosion,
            }
        }

    def guide(self, content):
        """``content`` (normalized images, or a batch of them) as a ``GuidedContent`` of ``--content_mask``
        (one mask for every image of a folder and frame of a video, fitted to each by the objective), or as it
        is without one; the mask read by ``guided_styles`` first."""
        if self.content_mask is None:
            return content
        return GuidedContent(content, self._masks[self.content_mask], self.options.mask_erosion)

    def check_content(self, path, size):
        """``NSTError`` naming content image ``path`` when ``--content_mask`` is not of its aspect ratio as sized
        for the run (``size``: (height, width)) within 1%."""
        if self.content_mask is None:
            return
        self._read()
        mask, (height, width) = self._masks[self.content_mask], size
        if mask.shape != (height, width) and not aspect_matches(mask.shape, size):
            raise NSTError(
                f"{quoted(path)} is {width}x{height} as sized for the run, not the aspect ratio of --content_mask "
                f"{quoted(self.content_mask)} ({mask.shape[1]}x{mask.shape[0]}) within 1%: give it a mask of its "
                "own aspect ratio, or leave it out of the folder"
            )

    def _check_left(self, path, size, layers):
        """``NSTError`` when the mask at ``path`` (None: none) leaves nothing at one of its style's layers for a
        content of ``size``: averaged into a grid that coarse, or eroded away with ``--mask_erosion``."""
        if path is None or not self.geometry:
            return
        config, pooling = self.geometry
        network = get_network(config.network)
        mask = fit_mask(self._masks[path], *size)
        for layer, _ in layers or config.style_layers:
            if not mask_at_layer(mask, network, layer, pooling, self.options.mask_erosion).any():
                eroded = " eroded (--mask_erosion)" if self.options.mask_erosion else ""
                raise NSTError(
                    f"mask {quoted(path)}{eroded} leaves nothing at {layer} for a {size[1]}x{size[0]} image: "
                    "its region is too small for that layer; make it larger, or give this style layers without it "
                    "(--style_image_layers)"
                )

    def _read(self):
        for path, option in (
            *((path, "--style_masks") for path in self.style_masks),
            *((path, "--style_image_masks") for path in self.image_masks),
            (self.content_mask, "--content_mask"),
        ):
            if path is not None and path not in self._masks:
                self._masks[path] = read_mask(path, option)


def regions(request):
    """The ``Regions`` of a ``CommandRequest``: counts, paths and layers checked (the masks are read by
    ``Regions.apply``); ``NSTError`` naming the option for anything wrong."""
    options = RegionOptions(**{f.name: getattr(request.args, f.name) for f in dataclasses.fields(RegionOptions)})
    count = len(request.style_paths)
    options.check_counts(count)
    if options.given and request.config.style_normalizer == "image":
        raise NSTError(
            "--style_normalizer image divides by the whole image's size, which a region has not: styles by region "
            "take layer (the course's) or gram"
        )

    def paths(given, option):
        given = list(given or ()) + [NONE] * (count - len(given or ()))
        return tuple(None if name == NONE else resolve_image(name, option) for name in given)

    network = get_network(request.config.network)
    layers = []
    for text in list(options.style_image_layers or ()) + [NONE] * (count - len(options.style_image_layers or ())):
        pairs = None if text == NONE else parse_style_layers(text)
        for name, _ in pairs or ():
            network.check_layer("--style_image_layers layer", name)
        layers.append(pairs)
    content = None if options.content_mask is None else resolve_image(options.content_mask, "content_mask")
    return Regions(
        options,
        tuple(layers),
        paths(options.style_masks, "style_masks"),
        paths(options.style_image_masks, "style_image_masks"),
        content,
        (request.config, request.args.pooling),
    )


def read_mask(path, option):
    """The mask at ``path`` as float32 weights (H, W) in [0, 1]; ``NSTError`` naming ``option`` for a file that
    is not an image or a mask that is black everywhere."""
    try:
        pixels = read_image(path)
    except NSTError as error:
        raise NSTError(f"{option} {quoted(path)} is not an image: {error}") from None
    mask = np.clip(pixels.astype(np.float32) @ LUMA / 255.0, 0.0, 1.0)
    if not mask.any():
        raise NSTError(f"{option} {quoted(path)} is black everywhere: its style would apply nowhere")
    return mask


def _digest(path):
    """SHA-256 of the file at ``path`` (None: None); ``NSTError`` when it cannot be read."""
    if path is None:
        return None
    digest = hashlib.sha256()
    try:
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise NSTError(f"mask {quoted(path)} cannot be read: {error.strerror or error}") from None
    return digest.hexdigest()


def _check_aspect(masks, path, size, resized):
    """Adds ``path`` to ``resized`` when its mask is of ``size`` (height, width)'s aspect ratio within 1% but not
    its size; ``NSTError`` when the aspect ratio differs more (None: nothing to check)."""
    if path is None:
        return
    mask = masks[path]
    height, width = size
    if mask.shape == (height, width):
        return
    if not aspect_matches(mask.shape, size):
        raise NSTError(
            f"mask {quoted(path)} is {mask.shape[1]}x{mask.shape[0]}, not the aspect ratio of its image "
            f"({width}x{height}) within 1%: make it {width}x{height}"
        )
    resized.add(quoted(path))
