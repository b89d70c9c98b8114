"""What the many-image job and its Ray engine share (so that the engine needs nothing from ``many_job``, which
calls it): the job's description, its members and their names.
"""

import dataclasses
import re

from ...plan.config import StyleTransferConfig
from ...plan.large_options import LargeImageOptions
from ...runs.presets import Preset
from ...tensors.images import fit_style, reshape_and_normalize_image
from .manifest import Manifest


@dataclasses.dataclass(frozen=True)
class Member:
    """One result to make: content image ``path`` (``digest``: its SHA-256 at setup) with ``styles`` (indices
    into the job's), saved as ``name``."""

    index: int
    path: str
    name: str
    size: tuple
    styles: tuple
    digest: str = ""


@dataclasses.dataclass(frozen=True)
class ManyJob:
    """A validated many-image command line; nothing in it is created or loaded yet.

    ``config``, ``preset``, ``large``, ``pooling``: as for one image (``config.seed + index`` seeds member
    ``index``); ``fit``: how images reach their size; ``members``: the ``Member``s still to do, in run order;
    ``style_paths`` and ``styles``: the style images' paths and pixels; ``tiles``: the ``TilePlan`` (or None) by
    size; ``weights``: a ``Handover``; ``outputs``, ``manifest``: the folder's (the manifest loaded); ``read``:
    ``read(path, size, digest=None)`` -> pixels at ``size`` (``NSTError`` for an unreadable image or one whose
    SHA-256 is no longer ``digest``); ``reports``, ``skip_errors``, ``batch_size``: the options; ``notes``: lines
    for standard error; ``ray``: the ``RayOptions`` of ``--engine ray``, or None (this process); ``log``: the
    ``run_log.LogOptions`` of ``--log_dir``, or None.
    """

    config: StyleTransferConfig
    preset: Preset
    large: LargeImageOptions
    fit: str
    members: list
    style_paths: list
    styles: list
    tiles: dict
    weights: object
    pooling: str
    outputs: object
    manifest: Manifest
    read: object
    reports: bool
    skip_errors: bool
    notes: list
    batch_size: int = 1
    ray: object = None
    log: object = None  # the ``run_log.LogOptions`` of --log_dir, or None
    regions: object = None  # styles by region (``mask_files.Regions``): one set of masks for every image, or None


def result_stem(name):
    """Result ``name`` without its extension: its report images' names start with it."""
    return name.rsplit(".", 1)[0]


def report_name(name, iteration):
    """The report image of result ``name`` at ``iteration``: ``<stem>.<iteration>.png`` (``REPORT_IMAGE``)."""
    return f"{result_stem(name)}.{iteration}.png"


#: A report image's name (``report_name``): group 1 its result's stem, group 2 the iteration.
REPORT_IMAGE = re.compile(r"^(.+)\.(0|[1-9][0-9]*)\.png$")


def style_images(job, size, styles):
    """The style images ``styles`` (indices into ``job.styles``) brought to their size for an output of
    ``size``: a list of normalized (1, h, w, 3) images."""
    large = job.large
    images = [
        reshape_and_normalize_image(
            fit_style(job.styles[index], size, job.fit, large.style_scale, large.style_size),
            job.config.normalization,
        )
        for index in styles
    ]
    return images if job.regions is None else job.regions.wrap(images, styles)


def guided_objective(job, make_objective):
    """``make_objective`` (``make_objective(model, content, styles, config, ...)``) with each content (an image or
    a batch) guided by ``--content_mask`` (``Regions.guide``); as it is without one."""
    if job.regions is None or job.regions.content_mask is None:
        return make_objective
    return lambda model, content, *rest, **named: make_objective(model, job.regions.guide(content), *rest, **named)


def member_seed(config, member):
    """``member``'s seed: ``config.seed`` plus its position among the command's inputs (None without a seed)."""
    return None if config.seed is None else config.seed + member.index


def groups(items, key=lambda member: member, consecutive=False):
    """``items`` in lists of one size and style choice (``key(item)``: its ``Member``), in first-seen order; with
    ``consecutive``, each list a run of neighbours, so the items keep their order (a size met again starts a new
    list)."""
    found = []
    for item in items:
        member = key(item)
        choice = (member.size, member.styles)
        same = [group for group in found if group[0] == choice]
        if consecutive and found and found[-1][0] == choice:
            found[-1][1].append(item)
        elif not consecutive and same:
            same[0][1].append(item)
        else:
            found.append((choice, [item]))
    return [group for _, group in found]
