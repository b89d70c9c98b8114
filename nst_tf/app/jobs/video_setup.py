"""Setting up a video job: every input checked, before anything is created or TensorFlow is loaded."""

import dataclasses
import os

from ...ground.errors import NSTError, quoted
from ...plan.clip import is_video_file
from ...plan.config import StyleTransferConfig
from ...plan.large_options import LargeImageOptions
from ...plan.memory import tile_plans
from ...plan.video_options import VideoOptions
from ...runs.presets import Preset
from ...tensors.images import ImageSize, fit_style, image_size, read_image, size_for
from .manifest import Manifest
from .request import refuse_many_image_options, resolve_image
from .many_setup import file_digest, file_identity
from .single import Handover
from .video_job import VideoJob, linked_partial, video_record
from ...plan.weights.reader_registry import read_network_weights


@dataclasses.dataclass(frozen=True)
class VideoRequest:
    """A video command line as given: ``size`` and ``sized`` (the sizing options the user wrote) decide the
    frames' size; the rest as for a single image."""

    config: StyleTransferConfig
    preset: Preset
    options: VideoOptions
    size: ImageSize
    sized: frozenset
    large: LargeImageOptions
    pooling: str
    path: str
    style_paths: list
    folder: str
    model: str


def wants(request):
    """Whether the command line's one content image is a video (found by content; a missing file is not)."""
    try:
        path = resolve_image(request.args.content_image_filename[0], "content_image_filename")
    except NSTError:
        return False  # the one-image kind says what is missing, after its own checks
    return is_video_file(path)


def prepare(request):
    """The ``VideoJob`` of a ``CommandRequest`` whose content is a video; see ``prepare_video``."""
    args = request.args
    refuse_many_image_options(args)
    path = resolve_image(args.content_image_filename[0], "content_image_filename")
    options = VideoOptions(**{field.name: getattr(args, field.name) for field in dataclasses.fields(VideoOptions)})
    return prepare_video(
        VideoRequest(
            config=request.config,
            preset=request.preset,
            options=options,
            size=request.size,
            sized=frozenset(request.given & {"width", "height", "max_size"}),
            large=request.large,
            pooling=args.pooling,
            path=path,
            style_paths=request.style_paths,
            folder=args.output_dir,
            model=args.model,
        )
    )


def prepare_video(request):
    """The ``VideoJob`` of ``request``, every input checked; nothing is created.

    Raises:
        NSTError: anything given is wrong (one line): a file that is not a video ffmpeg can read, one
            without frames or with absurd sizes, ``--scales``, an output ``<stem>.mp4`` that exists and
            is not this job's, a frames folder of other settings or holding frames it did not record,
            a style image, the memory, the weights.
    """
    from ...plan.clip import probe

    if request.large.scales != 1:
        raise NSTError("--scales: a video's frames run at one size each")
    clip = probe(request.path)
    size = frame_size(request.size, request.sized, clip.size[::-1])
    stem = os.path.splitext(os.path.basename(request.path))[0] or "video"
    frames_folder = os.path.join(request.folder, f"{stem}.frames")
    output = os.path.join(request.folder, f"{stem}.mp4")
    if os.path.exists(request.folder) and not os.path.isdir(request.folder):
        raise NSTError(f"--output_dir: {quoted(request.folder)} exists and is not a folder")
    if os.path.lexists(frames_folder) and (os.path.islink(frames_folder) or not os.path.isdir(frames_folder)):
        raise NSTError(f"{quoted(frames_folder)} exists and is not a folder nst_tf made; move it")
    manifest = Manifest(frames_folder, _settings(request, clip, size))
    manifest.load()
    done, notes = _done(manifest, clip, frames_folder, output, size)
    large, config = request.large, request.config
    # The memory check first, from the style images' headers: the styles are then fitted to frames
    # of a size known to fit (fitting them to an absurd one would take the memory it lacks).
    tiles = tile_plans(config, large, [size], [image_size(path)[::-1] for path in request.style_paths])
    fit, paths = request.size.content_fit, request.style_paths
    fitted = [fit_style(read_image(path), size, fit, large.style_scale, large.style_size) for path in paths]
    weights = read_network_weights(config.network, request.model)  # last: the slowest check
    return VideoJob(
        config=config,
        preset=request.preset,
        options=request.options,
        clip=clip,
        size=size,
        fit=request.size.content_fit,
        style_paths=list(request.style_paths),
        styles=[_normalized(style, config) for style in fitted],
        tiles=tiles,
        weights=Handover(weights),
        pooling=request.pooling,
        folder=request.folder,
        frames_folder=frames_folder,
        output=output,
        manifest=manifest,
        done=done,
        notes=notes,
    )


def frame_size(size, sized, shape):
    """The frames' (height, width) for a video of ``shape`` (height, width), both even (H.264's 4:2:0 colour).

    The video's aspect ratio is kept (nothing cropped) unless both ``--width`` and ``--height`` were given
    (then the frames are fitted as images are, ``--fit``): the longer side is ``--max_size``, else the one
    side given, else the longer of the default width and height; ``shorter_side`` (a preset's) is kept.
    """
    from ...plan.clip import even

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


def _done(manifest, clip, frames_folder, output, size):
    """How many leading frames are done, and the notes to say so; refuses frames or a video not recorded.

    A recorded video still there is done, whatever became of its frames since. A recorded frame that
    is damaged or not of ``size`` (height, width) since is made again, with those after it: it is this
    job's file. A frame-named file not recorded is the user's (the job saves a frame under another
    name until its line is written), and refused.
    """
    from ...plan.clip import frame_name

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
    from ...plan.clip import is_frame_name

    if not os.path.isdir(frames_folder):
        return []
    return sorted(name for name in os.listdir(frames_folder) if is_frame_name(name) and name not in recorded)


def _intact(frames_folder, index, size):
    """Whether frame ``index``'s file can be read and is ``size`` (height, width)."""
    from ...plan.clip import frame_name

    try:
        return image_size(os.path.join(frames_folder, frame_name(index))) == (size[1], size[0])
    except NSTError:
        return False


def _settings(request, clip, size):
    return {
        "config": dataclasses.asdict(request.config),
        "video": dataclasses.asdict(request.options),
        "size": {"height": size[0], "width": size[1], "fit": request.size.content_fit},
        "large": dataclasses.asdict(request.large),
        "pooling": request.pooling,
        "input": file_digest(request.path),
        "frames": clip.frames,
        "styles": [file_digest(path) for path in request.style_paths],
        "weights": file_identity(request.model),
    }


def _normalized(pixels, config):
    from ...tensors.images import reshape_and_normalize_image

    return reshape_and_normalize_image(pixels, config.normalization).astype("float32")
