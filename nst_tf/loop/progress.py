"""What a run yields: ``Progress`` reports and ``Tick``s between them (plain records, no TensorFlow).

Kept apart from ``optimize`` so that a process that only receives results
(the Ray engine's driver) need not import TensorFlow.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Progress:
    """One report of a run.

    ``costs`` are the costs of the image after the optimizer step of
    ``iteration`` (0-based) by name, as the objective gives them:
    ``{"total": J, "content": J_content, "style": J_style, ...}``, one entry
    per cost term (``nst_tf.objective.terms``). ``image`` is that image as the
    objective presents it (normalized, shape (1, H, W, 3)). A batch run
    (``BatchStyleCost``) reports arrays of each image's costs, and its
    images, (B, H, W, 3). ``total_cost``, ``content_cost``, ``style_cost`` and
    ``tv_cost`` are the course's names for four of them (0 for a term the
    objective does not have).
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
