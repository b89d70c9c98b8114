"""Setting up a many-image job: every input checked, before anything is created or TensorFlow is loaded."""

import collections
import dataclasses
import functools
import hashlib
import os

from ...ground.errors import NSTError, quoted
from ...ground.files import NotRegularFile, identities, open_regular
from ...plan.memory import MemoryModel, available_bytes, largest_style, tile_plans
from ...plan.networks.network_registry import get_network
from ...plan.optimizers import get_optimizer
from ...ground.checks import check_whole
from ...tensors.images import image_size, read_image
from .content_inputs import content_paths, is_pattern, output_names
from .manifest import MANIFEST, Manifest
from .mask_files import regions
from .many_job import ManyRequest
from .many_parts import REPORT_IMAGE, ManyJob, Member, result_stem
from .outputs import Outputs, check_saves, listing
from .run_log import log_options
from .request import IMAGES_DIR, coarse_option, fitted, output_place, resolve_image
from .single import Handover
from ...plan.weights.reader_registry import read_network_weights


def wants(request):
    """Whether the command line names several content images: more files, a folder, a glob, or ``--each_style``."""
    names = request.args.content_image_filename
    under_images = functools.partial(os.path.join, IMAGES_DIR)
    return len(names) > 1 or request.args.each_style or os.path.isdir(names[0]) or is_pattern(names[0], under_images)


def prepare(request):
    """The ``ManyJob`` of a ``CommandRequest`` naming several content images; see ``prepare_many``."""
    args = request.args
    left_out = []  # the named folders' files that are not images
    resolve = functools.partial(resolve_image, option="content_image_filename")
    contents = content_paths(args.content_image_filename, args.recursive, resolve, left_out=left_out)
    return prepare_many(
        ManyRequest(
            config=request.config,
            preset=request.preset,
            size=request.size,
            large=request.large,
            pooling=args.pooling,
            contents=contents,
            style_paths=request.style_paths,
            folder=output_place(request, several=True)[0],
            model=args.model,
            each_style=args.each_style,
            reports=args.reports,
            skip_errors=args.on_error == "skip",
            batch_size=args.batch_size,
            ray=ray_options(args),
            log=log_options(args, request.given),
            notes=not_images_note(left_out),
            regions=_regions(request),
        )
    )


def _regions(request):
    """The styles by region of the command line (one set of masks for every image), or None without them."""
    asked = regions(request)
    return asked if asked.options.given else None


def not_images_note(found):
    """A note counting (and naming the first of) ``found``, the files of the named folders that are not images
    (left out); none when there are none."""
    if not found:
        return ()
    files = "1 file that is not an image" if len(found) == 1 else f"{len(found)} files that are not images"
    shown = ", ".join(quoted(os.path.basename(path)) for path in found[:3]) + (", ..." if len(found) > 3 else "")
    return (f"the content folders hold {files} ({shown}); left out",)


def ray_options(args):
    """The ``RayOptions`` of ``--engine ray`` (None for the local engine), checked."""
    from .ray_engine import RayOptions, check_available

    if args.engine == "local":
        if args.workers != 1 or args.ray_address is not None:
            raise NSTError("--workers and --ray_address apply to --engine ray")
        return None
    if args.reports:
        raise NSTError("--reports runs with --engine local (Ray's workers send back only the results)")
    if args.log_dir is not None:
        raise NSTError("--log_dir runs with --engine local (Ray's workers send back only the results)")
    if args.ray_address is not None and not args.ray_address.strip():
        raise NSTError("--ray_address: empty; give a cluster's address, or leave it out for a local Ray")
    check_available()
    return RayOptions(workers=check_whole("--workers", args.workers), address=args.ray_address)


#: How a refusal of coarse to fine for several images ends.
ONE_SIZE = "; give --scales 1, or run coarse to fine one image at a time"


def prepare_many(request):
    """The ``ManyJob`` of ``request`` (a ``ManyRequest``), every input checked; nothing is created.

    Raises:
        NSTError: anything given is wrong (one line): an unreadable content image unless
            ``skip_errors`` (then it is noted and left out), a style image, the output folder, its manifest
            (made with other settings), an output name held by a link, a folder, an input or a file this
            job did not make, the memory, the weights.
    """
    config, large = request.config, request.large
    batch_size = check_whole("--batch_size", request.batch_size)
    if batch_size > 1:
        get_optimizer(config.optimizer).check_batches("--batch_size")
    if batch_size > 1 and config.preserve_colors == "histogram":
        raise NSTError("--batch_size: preserve_colors histogram recolours the style for each content image")
    if large.coarse_to_fine:
        raise NSTError(f"{coarse_option(large, request.preset)}: several content images run at one size each{ONE_SIZE}")
    listing(request.folder)  # a file there is refused before its manifest is looked for
    manifest = Manifest(request.folder, _settings(request))
    manifest.load()
    notes, shapes = list(request.notes), {}
    for path in not_results(request, manifest):
        try:
            shapes[path] = _checked_content(path, request)
        except NSTError as error:
            if not request.skip_errors:
                raise NSTError(f"{error}; --on_error skip leaves it out and does the others") from None
            notes.append(
                f"skipped {error}" if str(error).startswith(quoted(path)) else f"skipped {quoted(path)}: {error}"
            )
    members = _members(request, shapes, manifest, notes)
    styles = [read_image(path) for path in request.style_paths]
    if request.regions is not None:  # every mask checked against every size (the objective fits them)
        for member in members:
            request.regions.check_content(member.path, member.size)
        notes += request.regions.guided_styles(styles, sorted({member.size for member in members}))[1]
    tiles = _tiles(request, collections.Counter(member.size for member in members), styles)
    weights = read_network_weights(config.network, request.model)  # last: the slowest check
    return ManyJob(
        config=config,
        preset=request.preset,
        large=large,
        fit=request.size.content_fit,
        members=members,
        style_paths=list(request.style_paths),
        styles=styles,
        tiles=tiles,
        weights=Handover(weights),
        pooling=request.pooling,
        outputs=Outputs(folder=request.folder, config=config, report_image=request.preset.report_image),
        manifest=manifest,
        read=functools.partial(_read, fit=request.size.content_fit),
        reports=request.reports,
        skip_errors=request.skip_errors,
        notes=notes,
        regions=request.regions,
        batch_size=batch_size,
        ray=request.ray,
        log=request.log,
    )


def not_results(request, manifest):
    """The content paths, less this job's own results (an output folder inside what the inputs name)."""
    folder, recorded = os.path.realpath(request.folder), manifest.outputs
    return [
        path
        for path in request.contents
        if not (os.path.basename(path) in recorded and os.path.realpath(os.path.dirname(path)) == folder)
    ]


def _checked_content(path, request):
    """(height, width) of content image ``path``; decoded whole once unless ``skip_errors`` (then read later)."""
    width, height = image_size(path)
    if not request.skip_errors:
        # --on_error refuse: a damaged image is refused before any work, as for one image.
        target = request.size.of((height, width))
        _read(path, target, request.size.content_fit)
    return height, width


def _read(path, size, fit, digest=None):
    """The content image at ``path`` brought to ``size`` (height, width); ``NSTError`` naming it otherwise, or
    when its bytes no longer have the SHA-256 ``digest`` (its result would be recorded under the old one)."""
    height, width = size
    if digest is not None and file_digest(path) != digest:
        raise NSTError(f"{quoted(path)}: its bytes changed since the job started; the same command again does it")
    return fitted(read_image(path, target=(width, height)), width, height, fit, path)


def _members(request, shapes, manifest, notes):
    """The members still to do, in the command's order (each style choice in turn)."""
    indices = [index for index, path in enumerate(request.contents) if path in shapes]  # the seeds' indices
    paths = [request.contents[index] for index in indices]
    everyone = tuple(range(len(request.style_paths)))
    style_choices = [(i,) for i in everyone] if request.each_style else [everyone]
    names, renamed = output_names(paths, request.style_paths if request.each_style else None)
    notes.extend(renamed)
    everything, names = [], iter(names)
    for index, path in zip(indices, paths):
        size, digest = request.size.of(shapes[path]), file_digest(path)
        for styles in style_choices:
            member = dict(index=index, path=os.path.abspath(path), size=size, styles=styles, digest=digest)
            everything.append(Member(name=next(names), **member))
    inputs = identities([*(request.contents[index] for index in indices), *request.style_paths, request.model])
    check_names(request, everything, manifest, inputs)
    if request.reports:
        _check_reports(request, everything, inputs, notes)
    todo = [m for m in everything if not manifest.done(m.path, m.name, m.digest)]  # done: its file is there
    if len(todo) < len(everything):
        notes.append(
            f"{len(everything) - len(todo)} of {len(everything)} results are done already ({MANIFEST}); "
            f"doing the other {len(todo)}"
        )
    # In the command's order (a folder's images by name), each style in turn with --each_style.
    todo.sort(key=lambda member: (member.styles, member.index))
    return todo


def check_names(request, members, manifest, inputs):
    """Refuses output names held by a link, a folder, an input (``inputs``: ``{identity: path}``), or a file
    this job did not make."""
    names = {member.name for member in members}
    for path in check_saves(request.folder, names.__contains__, inputs, "job", "this job"):
        if os.path.basename(path) not in manifest.outputs:
            raise NSTError(
                f"--output_dir: {quoted(path)} exists and is not a result {MANIFEST} records; this job would "
                "replace it (move it, or choose another --output_dir)"
            )


def _check_reports(request, members, inputs, notes):
    """Refuses report image names (``<stem>.<i>.png``) held by a link, a folder or an input; notes how many
    other files have them, which the job replaces, as a single run does its own."""
    stems = {result_stem(member.name) for member in members}

    def ours(name):
        match = REPORT_IMAGE.match(name)
        return bool(match) and match.group(1) in stems and _reported(request.config, int(match.group(2)))

    found = len(check_saves(request.folder, ours, inputs, "job", "--reports"))
    if found:
        notes.append(
            f"{quoted(request.folder)} already holds {found} images named as this job's reports; --reports "
            "replaces them"
        )


def _reported(config, iteration):
    return iteration < config.epochs and config.is_report(iteration)


def _tiles(request, sizes, styles):
    """The ``TilePlan`` (or None) of each size (``sizes``: size -> how many results have it)."""
    config, large = request.config, request.large
    get_network(config.network).check_pooling(request.pooling)
    shapes = [style.shape[:2] for style in styles]
    planned = config if request.regions is None else request.regions.planning_config(config)
    plans = tile_plans(planned, large, sizes, shapes)
    memory = MemoryModel(config.network, config.optimizer, config.lbfgs_history)
    largest = {size: largest_style(size, shapes, large) for size in sizes}
    if request.batch_size > 1:
        for size, count in sizes.items():
            _check_batch(request, memory, size, largest[size], plans[size], min(request.batch_size, count))
    if request.ray is not None and not request.ray.address:
        _check_local_workers(request, memory, sizes, largest, plans)
    return plans


def _check_local_workers(request, memory, sizes, largest, plans):
    """Refuses more actors of a local Ray than this machine's CPUs, or than its memory holds at once: each
    actor holds the network and runs its batches (a cluster's nodes are its own to size). ``largest``: the
    largest style's shape at each size."""
    from .ray_engine import local_cpus

    workers, cpus = request.ray.workers, local_cpus()
    if workers > cpus:
        raise NSTError(f"--workers {workers}: a local Ray runs on this machine's {cpus} CPUs; give at most {cpus}")
    actors = min(workers, sum(-(-count // request.batch_size) for count in sizes.values()))
    if actors < 2:
        return
    for (height, width), count in sizes.items():
        if plans[(height, width)] is not None:
            raise NSTError(
                f"--workers {workers}: {width}x{height} is computed in tiles to fit the memory budget in one "
                "process, and each worker is a process of its own (use --workers 1)"
            )
        need = actors * memory.whole(height * min(request.batch_size, count), width, largest[(height, width)])
        what = f"{actors} workers each holding the network and a {width}x{height} run"
        _check_fits(request, f"--workers {workers}", need, what, "use fewer --workers")


def _check_batch(request, memory, size, style, plan, count):
    """Refuses a batch of ``count`` images of ``size`` that is tiled or does not fit the budget whole."""
    height, width = size
    if plan is not None:
        raise NSTError(f"--batch_size: {width}x{height} is computed in tiles; batches run whole (use --batch_size 1)")
    need = memory.whole(height * count, width, style)  # B images take what one image B times taller takes
    what = f"{count} images of {width}x{height} at once"
    _check_fits(request, f"--batch_size {request.batch_size}", need, what, "use a smaller --batch_size")


def _check_fits(request, option, need, what, fix):
    """Refuses ``need`` bytes for ``what`` beyond the budget: ``--max_memory``, else the memory available."""
    budget = request.large.max_memory or available_bytes()
    if budget is not None and need > budget:
        limit = "the budget (--max_memory) is" if request.large.max_memory else "available:"
        raise NSTError(
            f"{option}: {what} need about {need / 2**30:.2f} GiB of memory; {limit} {budget / 2**30:.2f} GiB ({fix})"
        )


def _settings(request):
    """What changes a result: recorded in the manifest, a rerun with other values refused."""
    # Tiles give the same costs: the budget and tile size are no settings of the result.
    large = {k: v for k, v in dataclasses.asdict(request.large).items() if k not in ("max_memory", "tile_size")}
    return {
        "config": dataclasses.asdict(request.config),
        "size": dataclasses.asdict(request.size),
        "large": large,
        "pooling": request.pooling,
        "styles": [file_digest(path) for path in request.style_paths],
        "weights": file_identity(request.model),
        "each_style": request.each_style,
        **(request.regions.settings() if request.regions is not None else {}),
    }


def file_digest(path):
    """SHA-256 of an image's bytes: a changed style image is another setting, a changed content image
    another input (its name is neither). ``NSTError`` when it cannot be read."""
    digest = hashlib.sha256()
    try:
        # A pipe put in an image's place after the checks must not hold the job forever.
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except NotRegularFile:
        raise NSTError(f"{quoted(path)}: is not a regular file") from None
    except OSError as error:
        raise NSTError(f"{quoted(path)}: cannot be read: {error.strerror or error}") from None
    return digest.hexdigest()


def file_identity(path):
    """The weights file's name and size (hashing 510 MB for every run would take seconds)."""
    try:
        return {"name": os.path.basename(path), "bytes": os.stat(path).st_size}
    except OSError:
        return {"name": os.path.basename(path)}
