"""A command line on its way to a job: ``CommandRequest`` (handed to the first of ``kinds.JOB_KINDS``
that wants it, whose ``prepare`` checks the rest), and the checks every kind of job shares."""

import dataclasses
import difflib
import os

from ...ground.errors import NSTError, quoted
from ...plan.locations import BUNDLED_IMAGES_DIR, IMAGES_DIR, find_image  # noqa: F401 (BUNDLED_IMAGES_DIR: the web page's)
from ...runs.presets import PRESETS
from ...tensors.images import SAVE_FORMATS, fit_image, image_size


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
    """The path of image ``name`` (as given, else under images/, else, for a name under images/ or a bare name, the
    package's bundled copy: the default images from any folder); ``NSTError`` naming ``--option`` if none, with
    the closest file name beside it where one is close."""
    for candidate in (name, os.path.join(IMAGES_DIR, name), find_image(name)):
        # Anything that exists is taken (the reader then says what is wrong with a FIFO or a folder).
        if os.path.lexists(candidate):
            return candidate
    hint = ""
    if name in _PRESET_IMAGES:  # a preset's own image, not one the user named
        short = {"content_image_filename": "-c", "style_image_filename": "-s"}.get(option, f"--{option}")
        hint = (
            f"; it is a preset's image: put it in {IMAGES_DIR}/ (CS231n's come with its assignment), or name yours "
            f"with {short} FILE"
        )
    elif _close_name(name):
        hint = f"; did you mean {quoted(_close_name(name))}?"
    raise NSTError(f"--{option}: image not found: {quoted(name)} (looked as a path and under {IMAGES_DIR}/){hint}")


def _close_name(name):
    """The file beside where ``name`` points whose name is closest to it (a typo), or None."""
    folder, base = os.path.split(name)
    try:
        names = [entry.name for entry in os.scandir(folder or ".") if entry.is_file()]
    except OSError:
        return None
    close = difflib.get_close_matches(base, names, n=1, cutoff=0.75)
    return os.path.join(folder, close[0]) if close else None


#: The images the presets name by default.
_PRESET_IMAGES = {name for preset in PRESETS.values() for name in (preset.content_image, preset.style_image)}


def output_place(request, several):
    """``(folder, file)`` of ``-o``/``--output_dir``: the folder the images go to, and the final image's path
    where ``-o`` names one (``several``: several results, so ``-o`` names a folder); ``NSTError`` for a file
    of an unknown format, or ``-o`` naming a folder as well as ``--output_dir``."""
    args = request.args
    output = args.output
    if output is None:
        return args.output_dir, None
    named_folder = several or output.endswith(("/", os.sep)) or os.path.isdir(output)
    if several and not os.path.isdir(output) and os.path.splitext(output)[1].lower() in SAVE_FORMATS:
        raise NSTError(
            f"-o {quoted(output)} names a file, but several content images give several results; name a folder "
            f"(e.g. -o {quoted(os.path.splitext(output)[0] + '/')})"
        )
    if named_folder:
        if "output_dir" in request.given and os.path.normpath(output) != os.path.normpath(args.output_dir):
            raise NSTError(f"-o {quoted(output)} and --output_dir {quoted(args.output_dir)} name two folders; give one")
        return output, None
    extension = os.path.splitext(output)[1].lower()
    if extension == ".mp4":
        raise NSTError(
            f"-o: {quoted(output)}: an .mp4 is written for a video content; name an image such as result.jpg"
        )
    if extension not in SAVE_FORMATS:
        raise NSTError(
            f"-o: {quoted(output)} has no image extension nst_tf writes ({', '.join(SAVE_FORMATS)}); name a file "
            "such as result.jpg, or a folder ending in /"
        )
    folder = args.output_dir if "output_dir" in request.given else os.path.dirname(output) or "."
    return folder, output


def coarse_option(large, preset):
    """How a refusal names what asked for several sizes: ``--scales`` or ``--min_scale``, or the preset whose
    own choice it is."""
    name = "scales" if large.scales != 1 else "min_scale"
    if preset.large.coarse_to_fine and getattr(preset.large, name) == getattr(large, name):
        return f"--preset {preset.name} (coarse to fine)"
    return f"--{name}"


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
