"""Setting up a video job: every input checked, before anything is created or TensorFlow is loaded."""

import dataclasses
import os

from ...ground.errors import NSTError, quoted
from ...plan.clip import even, frame_name, is_frame_name, is_video_file, probe
from ...plan.memory import tile_plans
from ...plan.video_options import VideoOptions, check_video_config
from ...tensors.images import fit_style, image_size, read_image, reshape_and_normalize_image, size_for
from .manifest import Manifest
from .mask_files import regions
from .run_log import log_options
from .request import coarse_option, refuse_many_image_options, resolve_image
from .many_setup import file_digest, file_identity
from .single import Handover
from .video_job import VideoJob, linked_partial, video_record
from ...plan.weights.reader_registry import read_network_weights


def wants(request):
    """Whether the command line's one content image is a video (found by content; a missing file is not)."""
    try:
        path = resolve_image(request.args.content_image_filename[0], "content_image_filename")
    except NSTError:
        return False  # the one-image kind says what is missing, after its own checks
    return is_video_file(path)


def prepare(request):
    """The ``VideoJob`` of a ``CommandRequest`` whose content is a video, every input checked; nothing is created.
    ``NSTError`` for anything wrong: no video ffmpeg can read (or no frames, absurd sizes), ``--scales``, an
    output ``<stem>.mp4`` not this job's, a frames folder of other settings or holding frames it did not
    record, a style image, the memory, the weights.
    """
    args, large, config = request.args, request.large, request.config
    refuse_many_image_options(args)
    path = resolve_image(args.content_image_filename[0], "content_image_filename")
    options = VideoOptions(**{field.name: getattr(args, field.name) for field in dataclasses.fields(VideoOptions)})
    if large.coarse_to_fine:
        asked = coarse_option(large, request.preset)
        raise NSTError(f"{asked}: a video's frames run at one size each; give --scales 1")
    check_video_config(config)
    log = log_options(args, request.given)
    clip = probe(path)
    size = frame_size(request.size, request.given & {"width", "height", "max_size"}, clip.size[::-1])
    folder, frames_folder, output = places(path, *video_output(request))
    manifest = Manifest(frames_folder, _settings(request, options, path, clip, size))
    manifest.load()
    done, notes = frames_done(manifest, clip, frames_folder, output, size)
    # The memory check first, from the style images' headers: the styles are then fitted to frames
    # of a size known to fit (fitting them to an absurd one would take the memory it lacks).
    asked = regions(request)  # styles by region: one set of masks for every frame
    planned = asked.planning_config(config)
    tiles = tile_plans(planned, large, [size], [image_size(style)[::-1] for style in request.style_paths])
    fit = request.size.content_fit
    styles = [fit_style(read_image(p), size, fit, large.style_scale, large.style_size) for p in request.style_paths]
    normalized = [reshape_and_normalize_image(style, config.normalization).astype("float32") for style in styles]
    normalized, mask_notes = asked.guided_styles(normalized, [size])
    weights = read_network_weights(config.network, args.model)  # last: the slowest check
    return VideoJob(
        config=config,
        options=options,
        clip=clip,
        size=size,
        fit=fit,
        styles=normalized,
        tiles=tiles,
        weights=Handover(weights),
        pooling=args.pooling,
        folder=folder,
        frames_folder=frames_folder,
        output=output,
        manifest=manifest,
        done=done,
        notes=notes + mask_notes,
        log=log,
        regions=asked,
    )


def video_output(request):
    """``(folder, video path or None)`` of ``-o``/``--output_dir`` for a video: ``-o`` names the .mp4 to write
    (or a folder, ending in /); ``NSTError`` for another extension."""
    output = request.args.output
    if output is None or output.endswith(("/", os.sep)) or os.path.isdir(output):
        return (request.args.output_dir if output is None else output), None
    if os.path.splitext(output)[1].lower() != ".mp4":
        raise NSTError(f"-o: {quoted(output)}: a video is written as an .mp4 file; name one such as result.mp4")
    if os.path.lexists(output) and os.path.realpath(output) == os.path.realpath(request.args.content_image_filename[0]):
        raise NSTError(f"-o: {quoted(output)} is the input video; name another file, such as styled.mp4")
    return (os.path.dirname(output) or "."), output


def places(path, folder, video=None):
    """The output ``folder``, and in it the frames folder ``<stem>.frames`` and the video ``<stem>.mp4`` of
    ``path`` (``video``: the .mp4's path where the user named it; its stem names the frames folder);
    ``NSTError`` where either folder is taken by something else."""
    stem = os.path.splitext(os.path.basename(video or path))[0] or "video"
    frames_folder, output = os.path.join(folder, f"{stem}.frames"), video or os.path.join(folder, f"{stem}.mp4")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NSTError(f"--output_dir: {quoted(folder)} exists and is not a folder")
    if os.path.lexists(frames_folder) and (os.path.islink(frames_folder) or not os.path.isdir(frames_folder)):
        raise NSTError(f"{quoted(frames_folder)} exists and is not a folder nst_tf made; move it")
    return folder, frames_folder, output


def frame_size(size, sized, shape):
    """The frames' (height, width) for a video of ``shape`` (height, width), both even (H.264's 4:2:0 colour).
    The video's aspect ratio is kept unless both ``--width`` and ``--height`` were given (then frames are fitted
    as images are): the longer side is ``--max_size``, else the one side given, else the longer default; a
    preset's ``shorter_side`` is kept."""
    height, width = shape
    if size.max_size is None and size.shorter_side is None and not {"width", "height"} <= sized:
        if "width" in sized:
            height, width = max(1, round(height * size.width / width)), size.width
        elif "height" in sized:
            height, width = size.height, max(1, round(width * size.height / height))
        else:
            height, width = size_for(height, width, max(size.width, size.height))
    else:
        height, width = size.of((height, width))
    return even(height), even(width)


def frames_done(manifest, clip, frames_folder, output, size):
    """How many leading frames are done, and the notes to say so. A recorded video still there is done,
    whatever became of its frames; a recorded frame damaged or not of ``size`` (height, width) since is made
    again, with those after it; a frame-named file not recorded is the user's (the job saves a frame under
    another name until its line is written), and refused, as is a video not recorded."""
    recorded = manifest.outputs
    if video_record(output) in recorded and os.path.isfile(output) and not os.path.islink(output):
        return clip.frames, [f"{quoted(output)} is done already ({clip.frames} frames)"]
    if os.path.isdir(frames_folder) and linked_partial(os.path.dirname(output) or ".", output):
        made = f"{quoted(output)} was made but not recorded (a stop between the two); it is recorded now"
        return clip.frames, [made]
    if os.path.lexists(output):
        raise NSTError(f"{quoted(output)} exists; nst_tf never replaces it (move it, or choose another --output_dir)")
    done = 0
    while done < clip.frames and frame_name(done) in recorded and _intact(frames_folder, done, size):
        done += 1
    notes = []
    strays = _strays(frames_folder, recorded)
    if strays:
        raise NSTError(
            f"{quoted(os.path.join(frames_folder, strays[0]))} is not a frame {os.path.basename(manifest.path)} "
            "records; this job would replace it (move it, or choose another --output_dir)"
        )
    if done == clip.frames:
        notes.append(f"all {clip.frames} frames are done already; the video is encoded from them")
    elif done:
        notes.append(f"{done} of {clip.frames} frames are done already; going on from frame {done + 1}")
    return done, notes


def _strays(frames_folder, recorded):
    """The frame-named files in ``frames_folder`` the manifest does not record, sorted."""
    if not os.path.isdir(frames_folder):
        return []
    return sorted(name for name in os.listdir(frames_folder) if is_frame_name(name) and name not in recorded)


def _intact(frames_folder, index, size):
    """Whether frame ``index``'s file can be read and is ``size`` (height, width)."""
    try:
        return image_size(os.path.join(frames_folder, frame_name(index))) == (size[1], size[0])
    except NSTError:
        return False


def _settings(request, options, path, clip, size):
    return {
        "config": dataclasses.asdict(request.config),
        "video": dataclasses.asdict(options),
        "size": {"height": size[0], "width": size[1], "fit": request.size.content_fit},
        "large": dataclasses.asdict(request.large),
        "pooling": request.args.pooling,
        "input": file_digest(path),
        "frames": clip.frames,
        "styles": [file_digest(style) for style in request.style_paths],
        "weights": file_identity(request.args.model),
        **regions(request).settings(),
    }
