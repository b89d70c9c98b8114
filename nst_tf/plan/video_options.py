"""The video options (``VideoOptions``), without TensorFlow or OpenCV, so the command checks them first."""

from dataclasses import dataclass

from ..ground.errors import NSTError
from ..ground.fields import option
from .large_options import MAX_ITERATIONS
from ..ground.checks import check_choice, check_finite, check_whole, short_repr

#: How optical flow is computed (``flow.py``), and DIS's presets, fastest first.
FLOW_METHODS = ("dis", "farneback")
DIS_PRESETS = ("ultrafast", "fast", "medium")
#: The earlier frames long-term consistency compares with (Ruder et al.'s J = {1, 2, 4}).
LONG_TERM_GAPS = (1, 2, 4)


@dataclass(frozen=True)
class VideoOptions:
    """How a video is stylized: the temporal term's weight, the flow, the first frame's iterations (each field's
    ``metadata["help"]`` is its command-line help). ``NSTError`` for a field out of its range or choices."""

    temporal_weight: float = option(
        1e4,
        "weight of the temporal cost, temporal_weight * mean(c * (x - warped previous frame)^2) in pixel units "
        "(0: frames stylized independently, each still started from the previous one warped)",
        metavar="X",
    )
    flow: str = option("dis", "optical flow: OpenCV's DIS, or Farneback's", choices=FLOW_METHODS)
    flow_preset: str = option("medium", "DIS's speed and accuracy (ultrafast, fast or medium)", choices=DIS_PRESETS)
    long_term: bool = option(
        False,
        "long-term consistency: compare each frame with frames -1, -2 and -4, each where no nearer one is trusted",
        action="store_true",
    )
    first_frame_epochs: int | None = option(
        None, "iterations of the first frame, which starts from noise (default: twice --epochs)", metavar="N", type=int
    )

    def __post_init__(self):
        weight = self.temporal_weight
        if check_finite("temporal_weight", weight) < 0:
            raise NSTError(f"temporal_weight must be a finite number of at least 0; got {short_repr(weight)}")
        object.__setattr__(self, "temporal_weight", float(weight))
        for name, choices in (("flow", FLOW_METHODS), ("flow_preset", DIS_PRESETS)):
            check_choice(name, getattr(self, name), choices)
        if not isinstance(self.long_term, bool):
            raise NSTError(f"long_term must be True or False; got {short_repr(self.long_term)}")
        if self.first_frame_epochs is not None:
            epochs = check_whole("first_frame_epochs", self.first_frame_epochs, most=MAX_ITERATIONS)
            object.__setattr__(self, "first_frame_epochs", epochs)

    @property
    def gaps(self):
        """The earlier frames each frame is compared with: (1,), or (1, 2, 4) with ``long_term``."""
        return LONG_TERM_GAPS if self.long_term else (1,)

    def first_epochs(self, epochs):
        """The first frame's iterations when the others run ``epochs``."""
        return self.first_frame_epochs if self.first_frame_epochs is not None else min(2 * epochs, MAX_ITERATIONS)


def check_video_config(config):
    """``NSTError`` for a ``StyleTransferConfig`` a video cannot use: ``preserve_colors="luminance"`` recolours
    each frame after its optimization, and the temporal cost compares frames as optimized."""
    if config.preserve_colors == "luminance":
        raise NSTError(
            "--preserve_colors luminance is not for video: it recolours each frame after its optimization, "
            "and the temporal cost compares frames as optimized (--preserve_colors histogram works)"
        )
