"""The jobs of ``--fast_model``: a trained transformation network stylizes one image, a folder (on this process or
Ray's actors) or a video's frames, each in one pass (``runs.fast_stylize``), in place of the optimization.

They are the optimization's jobs with that one step replaced: the many-image job's listing, manifest, resume,
atomic saves, ledger and last lines (``many_job.run_many``, ``ray_engine.run_on_ray``), and the video job's frames
folder, manifest, resume and encoding (``video_job.run_video``).
"""

import dataclasses
import io
import os
import time

import numpy as np

from ...ground.errors import NSTError, quoted
from ...ground.statuses import EXIT_OK, EXIT_SAVE_FAILED, PROG
from ...plan.clip import frames
from ...plan.video_options import VideoOptions
from ...runs.fast_stylize import plan_tiles, resize, stylize_pixels_with
from ...tensors.images import reshape_and_normalize_image
from ...tensors.quiet import import_tensorflow_quietly  # TensorFlow without its start-up lines
from .ledger import Ledger
from .manifest import Manifest
from .many_job import run_many
from .video_job import VideoRun, run_video


@dataclasses.dataclass(frozen=True)
class FastSettings:
    """What the shared bookkeeping reads of a fast job's settings: one step an image (``epochs``, ``print_every``),
    and results handed to the savers normalized with ImageNet's statistics, which give back the exact 8-bit
    pixels (``normalization``)."""

    epochs: int = 1
    print_every: int = 1
    normalization: str = "imagenet"


#: The settings every fast job hands the bookkeeping.
FAST = FastSettings()


@dataclasses.dataclass(frozen=True)
class FastModelUse:
    """How a job uses its fast model: the ``folder`` (``FastModelFolder``), its ``spec``, the style ``weights``
    (``FastModel.style_weights``' tuple, or None for its first style), the memory budget ``max_memory`` (bytes,
    or None: the memory available) and ``tile_size`` (or None: tiles only when needed), and the loaded ``model``
    (a ``single.Handover``; None where Ray's actors load their own)."""

    folder: object
    spec: object
    weights: tuple
    max_memory: int = None
    tile_size: int = None
    model: object = None

    def plan(self, size):
        """The ``FastTilePlan`` of an image of ``size`` (height, width), or None to run it whole."""
        return plan_tiles(*size, self.spec, budget=self.max_memory, tile_size=self.tile_size)


def tiles_note(size, plan):
    """A note saying an image of ``size`` (height, width) runs in ``plan``'s tiles; None without tiles."""
    if plan is None:
        return None
    return (
        f"{size[1]}x{size[0]} runs in {plan.count} tiles of up to {plan.tile}x{plan.tile} pixels, blended over "
        f"{plan.overlap} pixels (--max_memory, --tile_size)"
    )


def start_fast(use, err, stop=None):
    """TensorFlow imported, the device line written (with a ``stop``, which is deferred from here on) and the
    ``FastModel`` taken from ``use`` (or loaded from its folder when it holds none)."""
    import_tensorflow_quietly(err)
    if stop is not None:
        stop.defer()
        from ...tensors.precision import device_line

        err.write(f"{PROG}: running on {device_line('float32')}\n")
    if use.model is not None:
        model = use.model.take()
    else:
        from ...runs.fast_models import load_fast_model

        model = load_fast_model(use.folder.path)
    if stop is not None:
        stop.check()
    return model


def normalized(pixels):
    """uint8 (H, W, 3) pixels as the savers take them (``FAST.normalization``): (1, H, W, 3) float32."""
    return reshape_and_normalize_image(pixels, FAST.normalization).astype(np.float32)


# One image -----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FastSingleJob:
    """One content image: its ``pixels`` (uint8, at ``size``), the ``use`` of the model, the ``plan`` of tiles (or
    None), the ``outputs`` (``outputs.Outputs``, whose final path is the result's) and ``notes``."""

    pixels: object
    size: tuple
    use: FastModelUse
    plan: object
    outputs: object
    notes: list


def run_fast_single(job, out, err, stop):
    """Stylizes the image and saves it; returns the exit status. A signal before it is saved saves nothing
    (``Stopped``, between tiles or after the pass)."""
    for note in job.notes:
        err.write(f"{PROG}: note: {note}\n")
    created = job.outputs.prepare()
    if created:
        stop.cleanups.append(job.outputs.remove_if_empty)  # what the watcher undoes when it ends the process
    try:
        began = time.monotonic()
        model = start_fast(job.use, err, stop)
        result = stylize_pixels_with(model, job.pixels, job.use.weights, job.plan, check=stop.check)
        stop.check()  # a signal during the pass: nothing is saved
        stop.claim()
        saver = job.outputs.saver(err)
        if not saver.save(job.outputs.final_name, normalized(result)):
            return EXIT_SAVE_FAILED
        tiles = f", {job.plan.count} tiles" if job.plan is not None else ""
        out.write(
            f"done: 1 pass in {time.monotonic() - began:.1f} s ({job.size[1]}x{job.size[0]}{tiles}); saved "
            f"{job.outputs.final_path}\n"
        )
        return EXIT_OK
    finally:
        if created:  # a run stopped or failed before it saved anything leaves no empty folder behind
            job.outputs.remove_if_empty()


# Several images ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FastManyJob:
    """Several content images, as ``many_parts.ManyJob`` for the shared bookkeeping (``config`` is ``FAST``,
    ``style_paths`` empty, ``batch_size`` 1), with the ``use`` of the model in place of the network."""

    members: list
    outputs: object
    manifest: Manifest
    read: object
    skip_errors: bool
    notes: list
    use: FastModelUse
    ray: object = None
    config: FastSettings = FAST
    style_paths: tuple = ()
    batch_size: int = 1


def run_fast_many(job, out, err, stop):
    """Runs ``job`` as ``many_job.run_many`` runs a many-image job, each image one pass of the model."""
    return run_many(job, out, err, stop, local=_run_local, actor=RayFastStylizer)


def _run_local(job, out, err, stop):
    model = start_fast(job.use, err, stop)
    ledger = Ledger(job, out, err)
    stop.finisher = ledger.stopped
    return ledger.follow(lambda: _all(job, model, ledger, stop, err), stop)


def _all(job, model, ledger, stop, err):
    """Stylizes, saves and records each member in turn; an image unreadable at its turn is skipped."""
    noted = set()
    for member in job.members:
        stop.check()
        try:
            pixels = job.read(member.path, member.size, digest=member.digest)
        except NSTError as error:
            ledger.skip(member, error)
            continue
        ledger.under_way = [member]
        began = time.perf_counter()
        plan = job.use.plan(member.size)
        note = tiles_note(member.size, plan)
        if note and note not in noted:
            noted.add(note)
            err.write(f"{PROG}: note: {note}\n")
        result = stylize_pixels_with(model, pixels, job.use.weights, plan, check=stop.check)
        ledger.finished(member, _progress(result), time.perf_counter() - began)
        ledger.progress(0)


def _progress(pixels):
    """The ``Progress`` the ledger records for a result: one step, no costs."""
    from ...loop.progress import Progress

    return Progress(0, {}, normalized(pixels))


class RayFastStylizer:
    """A Ray Data actor for ``job`` (a ``FastManyJob``) with ``threads`` TensorFlow threads per operation: the model
    loaded from its folder once (every node must see it at the same path, as the images), then each row's image
    read, stylized and sent back as ``ray_engine.RayStylizer``'s rows are."""

    def __init__(self, job, threads):
        from .manifest import worker

        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)  # read when TensorFlow's runtime starts
        self._job, self._notes = job, io.StringIO()
        self._model = start_fast(job.use, self._notes)
        self._worker = worker()

    def __call__(self, batch):
        from .ray_engine import _column

        rows = [self._one(int(position)) for position in batch["position"]]
        rows[0]["notes"], self._notes = self._notes.getvalue(), io.StringIO()
        return {name: _column([row[name] for row in rows]) for name in rows[0]}

    def _one(self, position):
        from .ray_engine import _row

        job, member = self._job, self._job.members[position]
        try:
            pixels = job.read(member.path, member.size, digest=member.digest)
        except NSTError as error:
            return _row(position, "skipped", str(error))
        began = time.perf_counter()
        plan = job.use.plan(member.size)
        note = tiles_note(member.size, plan)
        if note:
            self._notes.write(f"{PROG}: note: {note}\n")
        image = normalized(stylize_pixels_with(self._model, pixels, job.use.weights, plan))
        done = dict(image=image.tobytes(), height=image.shape[1], width=image.shape[2], worker=self._worker)
        return _row(position, "done", "", seconds=float(time.perf_counter() - began), **done)


# A video -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FastVideoJob:
    """A video's frames, as ``video_job.VideoJob`` for the shared frames folder, manifest and encoding (``config``
    is ``FAST``, one step a frame), with the ``use`` of the model and the frames' ``plan`` of tiles (or None)."""

    clip: object
    size: tuple
    folder: str
    frames_folder: str
    output: str
    manifest: Manifest
    done: int
    notes: list
    use: FastModelUse
    plan: object = None
    config: FastSettings = FAST
    options: VideoOptions = VideoOptions(first_frame_epochs=1)
    log: object = None


def run_fast_video(job, out, err, stop):
    """Runs ``job`` as ``video_job.run_video`` runs a video job, each frame one pass of the model."""
    return run_video(job, out, err, stop, run_type=_FastVideoRun)


class _FastVideoRun(VideoRun):
    """The video job's run with each frame stylized in one pass, on its own (no temporal term)."""

    def _stylize(self, stop):
        from ...runs.many_images import Finished

        job = self.job
        model = start_fast(job.use, self.err, stop)
        note = tiles_note(job.size, job.plan)
        if note:
            self.err.write(f"{PROG}: note: {note}\n")
        index = -1
        for index, pixels in enumerate(frames(job.clip)):
            stop.check()
            if index >= job.clip.frames:
                break  # ffmpeg counted fewer when probing: the frames counted are the video's
            if index < self.done:
                continue
            began = time.perf_counter()
            result = stylize_pixels_with(model, frame_pixels(pixels, job.size), job.use.weights, job.plan, stop.check)
            self._finished(index, Finished(index, _progress(result), time.perf_counter() - began, False))
            self._progress(index, 1)
            if self.saver.failed:
                return EXIT_SAVE_FAILED
        if index + 1 < job.clip.frames:
            raise NSTError(f"{quoted(job.clip.path)}: it ended after {index + 1} of its {job.clip.frames} frames")
        return EXIT_OK


def frame_pixels(pixels, size):
    """A decoded frame brought to ``size`` (height, width): its last row or column cut where only rounding to even
    sides made it smaller, else resized (``--max_size``)."""
    height, width = size
    if pixels.shape[0] - height <= 1 and pixels.shape[1] - width <= 1:
        return pixels[:height, :width]
    return resize(pixels, size)
