"""The options of styles by region and scale control (``RegionOptions``), without TensorFlow, checked first."""

from dataclasses import dataclass

from ..ground.errors import NSTError
from ..ground.fields import option

#: What stands for "none" in a list of masks or layers: that style everywhere, from all of its image, at the
#: config's layers.
NONE = "-"


@dataclass(frozen=True)
class RegionOptions:
    """Which style goes where (Gatys et al. 2017): masks and each style's own layers (each field's
    ``metadata["help"]`` is its command-line help). ``NSTError`` for lists longer than the style images."""

    style_masks: tuple | None = option(
        None,
        "one grey image per style image, in order: the weight of that style at each pixel of the content "
        "(white: all of it; - for everywhere); resized when its aspect ratio is the content's within 1%",
        metavar="MASK",
        nargs="+",
    )
    style_image_masks: tuple | None = option(
        None,
        "one grey image per style image, in order: the region of the style image its statistics come from "
        "(- for all of it)",
        metavar="MASK",
        nargs="+",
    )
    content_mask: str | None = option(
        None, "a grey image: the weight of the content cost at each pixel (black: none)", metavar="MASK"
    )
    style_image_layers: tuple | None = option(
        None,
        "scale control: one NAME:W,... list per style image, in order, its own style layers and weights "
        "(- for --style_layers), e.g. conv4_1:1,conv5_1:1 for one painting's coarse structure and "
        "conv1_1:1,conv2_1:1 for another's fine texture",
        metavar="LAYERS",
        nargs="+",
    )
    mask_erosion: bool = option(
        False,
        "bring the masks to each layer eroded (a position counts as far as all it sees is inside), not only "
        "averaged at each pooling",
        action="store_true",
    )

    def __post_init__(self):
        for name in ("style_masks", "style_image_masks", "style_image_layers"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))

    @property
    def given(self):
        """Whether any region is asked for (masks or own layers)."""
        return any(
            value is not None
            for value in (self.style_masks, self.style_image_masks, self.content_mask, self.style_image_layers)
        )

    def check_counts(self, styles):
        """``NSTError`` when a list holds more entries than the ``styles`` style images."""
        for name in ("style_masks", "style_image_masks", "style_image_layers"):
            value = getattr(self, name)
            if value is not None and len(value) > styles:
                raise NSTError(
                    f"--{name} gives {len(value)} entries for {styles} style image{'s' * (styles != 1)}: "
                    f"give one per style image, in order ({NONE} for none)"
                )
