"""Setting up a ``--fast_model`` job: every input checked before anything is created, the model's weights loaded
last (the slowest check, and the one that imports TensorFlow); no VGG weights and no style image are looked for.

An image keeps its own size and aspect ratio (a video's frames their sides rounded down to even numbers);
``--max_size`` caps the longer side, never enlarging. A folder's manifest records the model (the SHA-256 of its
``fast_model.json`` and weights), the style weights, ``--max_size`` and ``--tile_size``: the results of another
model, style or size are never taken for done.
"""

import dataclasses
import functools
import os

from ...ground.checks import check_whole
from ...ground.errors import NSTError, quoted
from ...ground.files import identities
from ...plan.clip import probe
from ...plan.fast_model import FastModelFolder
from ...plan.large_options import LargeImageOptions
from ...runs.fast_models import FastModel
from ...runs.fast_stylize import MIN_SIDE, fast_size, parse_style, resize
from ...tensors.images import image_size, read_image
from .content_inputs import content_paths, output_names
from .fast_job import FAST, FastManyJob, FastModelUse, FastSingleJob, FastVideoJob, tiles_note
from .manifest import MANIFEST, Manifest
from .many_parts import Member
from .many_setup import check_names, file_digest, not_images_note, not_results, ray_options
from .outputs import Outputs, listing
from .request import output_place, refuse_many_image_options, resolve_image
from .single import Handover
from .video_setup import frames_done, places, video_output


@dataclasses.dataclass(frozen=True)
class FastRequest:
    """A command line naming ``--fast_model``, its options checked: ``args``, the options ``given``, the ``use`` of
    the model (not loaded yet) and ``max_size`` (or None)."""

    args: object
    given: frozenset
    use: FastModelUse
    max_size: int = None


def fast_request(args, given):
    """The ``FastRequest`` of parsed ``args`` with ``--fast_model``; ``NSTError`` (one line) for a folder that is not
    a fast model, a ``--fast_style`` it does not hold, or sizes out of range."""
    large = LargeImageOptions(max_memory=args.max_memory, tile_size=args.tile_size)
    max_size = None if args.max_size is None else check_whole("--max_size", args.max_size, least=MIN_SIDE)
    tile_size = None if large.tile_size is None else check_whole("--tile_size", large.tile_size, least=MIN_SIDE)
    folder = FastModelFolder(args.fast_model)
    description = folder.read_description()
    if not os.path.isfile(folder.weights):
        raise NSTError(
            f"--fast_model {quoted(folder.path)}: no {os.path.basename(folder.weights)} in it; the training saves it "
            "at the end"
        )
    try:
        weights = FastModel(None, description).style_weights(parse_style(args.fast_style))
    except NSTError as error:
        raise NSTError(f"--fast_style: {error}") from None
    weights = weights or tuple(float(index == 0) for index in range(description.spec.styles))
    use = FastModelUse(folder, description.spec, weights, large.max_memory, tile_size)
    return FastRequest(args, frozenset(given), use, max_size)


def _loaded(use):
    """``use`` holding its model, loaded from its folder (``NSTError`` for weights that do not load)."""
    from ...runs.fast_models import load_fast_model

    return dataclasses.replace(use, model=Handover(load_fast_model(use.folder.path)))


def _settings(request, **more):
    """What changes a result: the model's files, the style weights, the sizes (a manifest's settings)."""
    use = request.use
    model = {"description": file_digest(use.folder.description), "weights": file_digest(use.folder.weights)}
    return {
        "fast_model": model,
        "style": list(use.weights),
        "max_size": request.max_size,
        "tile_size": use.tile_size,
        **more,
    }


def _sized(path, shape, max_size, even=False):
    """``fast_size`` of an image of ``shape`` (height, width); its ``NSTError`` names ``path``."""
    try:
        return fast_size(*shape, max_size, even=even)
    except NSTError as error:
        raise NSTError(f"{quoted(path)}: {error}") from None


def read_at(path, size, digest=None):
    """The content image at ``path`` brought to ``size`` (height, width); ``NSTError`` naming it otherwise, or when
    its bytes no longer have the SHA-256 ``digest``."""
    if digest is not None and file_digest(path) != digest:
        raise NSTError(f"{quoted(path)}: its bytes changed since the job started; the same command again does it")
    return resize(read_image(path, target=size[::-1]), size)


# One image -----------------------------------------------------------------------------------------


def prepare_single(request):
    """The ``FastSingleJob`` of a command line naming one content image; nothing is created."""
    args = request.args
    refuse_many_image_options(args)
    content_path = resolve_image(args.content_image_filename[0], "content_image_filename")
    folder, final = output_place(request, several=False)
    outputs = Outputs(folder, FAST, "{i}.png", final=final, keep_reports=False)
    outputs.check([content_path, request.use.folder.description, request.use.folder.weights])
    width, height = image_size(content_path)
    size = _sized(content_path, (height, width), request.max_size)
    pixels = read_at(content_path, size)
    plan = request.use.plan(size)
    notes = [note for note in (tiles_note(size, plan),) if note]
    return FastSingleJob(pixels, size, _loaded(request.use), plan, outputs, notes)


# Several images ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Place:
    """The output ``folder`` and the ``contents`` (paths), as ``many_setup``'s checks read them."""

    folder: str
    contents: list


def prepare_many(request):
    """The ``FastManyJob`` of a command line naming several content images; nothing is created. ``NSTError`` as
    ``many_setup.prepare_many`` raises it (the images, the folder, its manifest, the output names, Ray)."""
    args = request.args
    left_out = []
    resolve = functools.partial(resolve_image, option="content_image_filename")
    contents = content_paths(args.content_image_filename, args.recursive, resolve, left_out=left_out)
    place = _Place(output_place(request, several=True)[0], contents)
    ray = ray_options(args)
    listing(place.folder)  # a file there is refused before its manifest is looked for
    manifest = Manifest(place.folder, _settings(request))
    manifest.load()
    skip, notes, sizes = args.on_error == "skip", list(not_images_note(left_out)), {}
    for path in not_results(place, manifest):
        try:
            sizes[path] = _checked(path, request.max_size, skip)
        except NSTError as error:
            if not skip:
                raise NSTError(f"{error}; --on_error skip leaves it out and does the others") from None
            notes.append(
                f"skipped {error}" if str(error).startswith(quoted(path)) else f"skipped {quoted(path)}: {error}"
            )
    members = _members(place, sizes, manifest, notes, [request.use.folder.description, request.use.folder.weights])
    if ray is not None and not ray.address:
        _check_local_workers(ray.workers)
    # Last: the slowest check, which imports TensorFlow; Ray's actors load their own (a cluster's driver need not
    # have TensorFlow's memory), and a weights file that does not load there ends the job in one line.
    use = _loaded(request.use) if ray is None else request.use
    return FastManyJob(members, Outputs(place.folder, FAST, "{i}.png"), manifest, read_at, skip, notes, use, ray)


def _checked(path, max_size, skip):
    """The size (height, width) content image ``path`` is stylized at; decoded once unless ``skip`` (then read at
    its turn)."""
    width, height = image_size(path)
    size = _sized(path, (height, width), max_size)
    if not skip:
        read_at(path, size)  # --on_error refuse: a damaged image is refused before any work
    return size


def _members(place, sizes, manifest, notes, model_files):
    """The members still to do, in the command's order."""
    indices = [index for index, path in enumerate(place.contents) if path in sizes]
    paths = [place.contents[index] for index in indices]
    names, renamed = output_names(paths)
    notes.extend(renamed)
    everything = [
        Member(index, os.path.abspath(path), name, sizes[path], styles=(), digest=file_digest(path))
        for index, path, name in zip(indices, paths, names)
    ]
    check_names(place, everything, manifest, identities([*paths, *model_files]))
    todo = [member for member in everything if not manifest.done(member.path, member.name, member.digest)]
    if len(todo) < len(everything):
        notes.append(
            f"{len(everything) - len(todo)} of {len(everything)} results are done already ({MANIFEST}); "
            f"doing the other {len(todo)}"
        )
    return todo


def _check_local_workers(workers):
    """Refuses more actors of a local Ray than this machine's CPUs."""
    from .ray_engine import local_cpus

    cpus = local_cpus()
    if workers > cpus:
        raise NSTError(f"--workers {workers}: a local Ray runs on this machine's {cpus} CPUs; give at most {cpus}")


# A video -------------------------------------------------------------------------------------------


def prepare_video(request):
    """The ``FastVideoJob`` of a command line whose content is a video; nothing is created. ``NSTError`` as
    ``video_setup.prepare`` raises it (the video, the output, the frames folder and its manifest)."""
    args = request.args
    refuse_many_image_options(args)
    path = resolve_image(args.content_image_filename[0], "content_image_filename")
    clip = probe(path)
    size = _sized(path, clip.size[::-1], request.max_size, even=True)
    folder, frames_folder, output = places(path, *video_output(request))
    settings = _settings(request, input=file_digest(path), frames=clip.frames, size=list(size))
    manifest = Manifest(frames_folder, settings)
    manifest.load()
    done, notes = frames_done(manifest, clip, frames_folder, output, size)
    plan = request.use.plan(size)
    return FastVideoJob(clip, size, folder, frames_folder, output, manifest, done, notes, _loaded(request.use), plan)
