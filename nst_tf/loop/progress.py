"""What a run yields: ``Progress`` reports and ``Tick``s between them (plain records, no TensorFlow,
so that a process that only receives results, the Ray engine's driver, need not import it)."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Progress:
    """One report of a run. ``costs``: the costs by name of the image after the step of ``iteration`` (0-based),
    ``{"total": J, "content": J_content, "style": J_style, ...}``; ``image``: that image as the objective presents
    it (1, H, W, 3). A batch run reports arrays of each image's costs, and (B, H, W, 3) images.
    ``total_cost``, ``content_cost``, ``style_cost``, ``tv_cost``: the course's names (0 for a term not there).
    """

    iteration: int
    costs: dict
    image: np.ndarray

    @property
    def total_cost(self):
        return self.costs["total"]

    @property
    def content_cost(self):
        return self.costs.get("content", 0.0)

    @property
    def style_cost(self):
        return self.costs.get("style", 0.0)

    @property
    def tv_cost(self):
        return self.costs.get("tv", 0.0)


@dataclass(frozen=True)
class Tick:
    """Between reports: ``iterations`` steps are done (``run(ticks=True)`` only)."""

    iterations: int
