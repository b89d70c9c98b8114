"""What a run yields: ``Progress`` reports and ``Tick``s between them (plain records, no TensorFlow).

Kept apart from ``optimize`` so that a process that only receives results
(the Ray engine's driver) need not import TensorFlow.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Progress:
    """One report of a run.

    ``total_cost``, ``content_cost``, ``style_cost`` and ``tv_cost`` are the
    costs of the image after the optimizer step of ``iteration`` (0-based),
    as the course prints them. ``image`` is that image as the objective
    presents it (normalized, shape (1, H, W, 3)). A batch run
    (``BatchStyleCost``) reports arrays of each image's costs, and its
    images, (B, H, W, 3).
    """

    iteration: int
    total_cost: float
    content_cost: float
    style_cost: float
    image: np.ndarray
    tv_cost: float = 0.0


@dataclass(frozen=True)
class Tick:
    """Between reports: ``iterations`` steps are done (``run(ticks=True)`` only)."""

    iterations: int
