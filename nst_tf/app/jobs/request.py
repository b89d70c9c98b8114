"""A command line on its way to a job: ``CommandRequest`` (handed to the first of ``kinds.JOB_KINDS``
that wants it, whose ``prepare`` checks the rest), and the checks every kind of job shares."""

import dataclasses
import os

from ...ground.errors import NSTError, quoted
from ...tensors.images import fit_image, image_size

#: Where image names that are not paths are looked for.
IMAGES_DIR = "images"

#: Shrinking an image by more than this on its longer side earns a note: most of its detail is lost.
LARGE_SHRINK = 4


@dataclasses.dataclass(frozen=True)
class CommandRequest:
    """A parsed command line, each option checked: ``args``, the ``preset`` they were parsed with, the
    options ``given``, the ``config``, ``size`` (``ImageSize``), ``large`` options and ``style_paths``."""

    args: object
    preset: object
    given: frozenset
    config: object
    size: object
    large: object
    style_paths: list


def resolve_image(name, option):
    """The path of image ``name`` (as given, else under images/); ``NSTError`` naming ``--option`` if neither."""
    for candidate in (name, os.path.join(IMAGES_DIR, name)):
        # Anything that exists is taken (the reader then says what is wrong with a FIFO or a folder).
        if os.path.lexists(candidate):
            return candidate
    raise NSTError(f"--{option}: image not found: {quoted(name)} (looked as a path and under {IMAGES_DIR}/)")


def refuse_many_image_options(args):
    """Raises ``NSTError`` when options of a many-image job are given for one content image."""
    ray = args.engine != "local" or args.workers != 1 or args.ray_address is not None
    if args.reports or args.on_error != "refuse" or args.batch_size != 1 or ray:
        raise NSTError(
            "--reports, --on_error, --batch_size, --engine, --workers and --ray_address apply to several content "
            "images (a folder, a glob, or more files)"
        )


def fitted(pixels, width, height, fit, path):
    """``fit_image``'s result; its ``NSTError`` names ``path``."""
    try:
        return fit_image(pixels, width, height, fit)
    except NSTError as error:
        raise NSTError(f"{quoted(path)}: {error}") from None


def shrink_note(path, width, height):
    """A note when the image at ``path`` is shrunk more than ``LARGE_SHRINK`` times to fit; else None."""
    original = image_size(path)
    factor = min(original[0] / width, original[1] / height)
    if factor <= LARGE_SHRINK:
        return None
    return f"{quoted(path)} is {original[0]}x{original[1]}; it is scaled down {factor:.0f}x to {width}x{height}"
