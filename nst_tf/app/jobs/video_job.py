"""The video job: a video's frames stylized in turn, kept as PNGs, then encoded with the input's audio.

Each frame is saved atomically as ``<stem>.frames/000001.png`` ... and recorded in that folder's
``manifest.jsonl`` (first line: the settings; a rerun with others is refused); a rerun resumes at the first
frame not recorded. ``<stem>.mp4`` is encoded under a temporary name and linked to its name only if still
free: a user's file is never replaced, a stopped encoding leaves no partial video. A signal ends the job
between traced calls or encoded frames, the finished frames intact.
"""

import contextlib
import dataclasses
import functools
import os
import re
import signal
import tempfile
import threading
import time

from ...ground.errors import NonFiniteCostError, NSTError, quoted
from ...ground.lock import holding
from ...ground.statuses import EXIT_NON_FINITE, EXIT_OK, EXIT_SAVE_FAILED, PROG
from ...plan.clip import FfmpegError, count_frames, encode, end_ffmpeg, frame_name, frames
from ...plan.config import StyleTransferConfig
from ...plan.video_options import VideoOptions
from ...tensors.images import new_file, read_image, reshape_and_normalize_image
from ..signals import Stopped, stop_words
from .build import start_up
from .drive import ProgressLine
from .ledger import costs
from .manifest import Manifest
from .many_parts import guided_objective
from .outputs import Saver
from .request import fitted
from .run_log import RunLogs


@dataclasses.dataclass(frozen=True)
class VideoJob:
    """A validated video command line; nothing in it is created or loaded yet.

    ``config.epochs`` are each frame's after the first; ``clip``: the input's ``Clip``; ``size``: the frames'
    (height, width), both even, reached by ``fit``; ``styles``: normalized at ``size``; ``tiles``: the
    ``TilePlan`` (or None) by size; ``weights``: a ``Handover``; ``frames_folder`` and ``output``:
    ``<stem>.frames`` and ``<stem>.mp4`` in ``folder``; ``manifest``: the frames folder's (loaded); ``done``:
    the leading frames recorded and present; ``notes``: lines for standard error; ``log``: the
    ``run_log.LogOptions`` of --log_dir, or None.
    """

    config: StyleTransferConfig
    options: VideoOptions
    clip: object
    size: tuple
    fit: str
    styles: list
    tiles: dict
    weights: object
    pooling: str
    folder: str
    frames_folder: str
    output: str
    manifest: Manifest
    done: int
    notes: list
    log: object = None
    regions: object = None  # styles by region (``mask_files.Regions``): one set of masks for every frame


def run_video(job, out, err, stop, run_type=None):
    """Runs ``job``; returns the exit status. ``NSTError`` where the output folder cannot be written or the video
    cannot be decoded or encoded; ``Stopped`` for a signal before the first frame. ``run_type``: what stylizes
    the frames, a ``VideoRun`` subclass (default: it, the optimization)."""
    created = _make_folders(job)  # first: a folder that cannot be made is the one line said
    for note in job.notes:
        err.write(f"{PROG}: note: {note}\n")
    run = (run_type or VideoRun)(job, out, err)
    stop.cleanups.append(functools.partial(_remove_empty, created))
    stop.cleanups.append(end_ffmpeg)  # ffmpeg runs in a session of its own: a stop at once must end it
    try:
        with holding(job.frames_folder):
            job.manifest.load()  # again, now that no other command writes there: one may have since setup
            if video_record(job.output) not in job.manifest.outputs and linked_partial(job.folder, job.output):
                job.manifest.add(input=job.clip.path, output=video_record(job.output), frames=job.clip.frames)
            _remove_leftovers(job)
            stop.defer()
            stop.finisher = run.stopped
            try:
                status = run.all(stop)
            except (KeyboardInterrupt, Stopped) as stopped:
                stop.claim()
                return run.stopped(128 + getattr(stopped, "signum", signal.SIGINT))
            stop.claim()
            return status
    finally:
        run.remove_partial()
        _remove_empty(created)


def _remove_empty(folders):
    """Removes the ``folders`` the job created that are still empty (it saved nothing), innermost first."""
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _make_folders(job):
    """Creates the output and frames folders and proves them writable; returns those it created."""
    created = []
    for folder in (job.folder, job.frames_folder):
        try:
            if not os.path.isdir(folder):
                os.makedirs(folder)
                created.append(folder)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            _remove_empty(created)
            raise NSTError(f"--output_dir: cannot write to {quoted(folder)}: {error.strerror or error}") from None
    return created


class VideoRun:
    """The frames stylized in this process, then the video encoded."""

    def __init__(self, job, out, err):
        self.job, self.out, self.err = job, out, err
        self.saver = Saver(job.frames_folder, job.config.normalization, err)
        self.done = job.done
        self.began = time.monotonic()
        self.partial = None  # the encoding's temporary file while it is written
        self.writing = threading.RLock()  # held while a frame and its line are written (see ``Ledger``)
        self.logs = RunLogs(job.log, job.config, err)  # --log_dir's runs: one per frame, opened at its first report
        first = job.options.first_epochs(job.config.epochs)
        self.bar = ProgressLine(first + max(0, job.clip.frames - 1) * job.config.epochs, err)

    def all(self, stop):
        """Stylizes the frames not done, then encodes the video (unless it is done already); returns the status."""
        if video_record(self.job.output) in self.job.manifest.outputs and os.path.isfile(self.job.output):
            return EXIT_OK
        if self.done < self.job.clip.frames:
            status = self._stylize(stop)
            if status != EXIT_OK:
                return status
        return self._encode(stop)

    def _stylize(self, stop):
        job = self.job
        started = start_up(job.config, job.weights.take(), job.pooling, job.tiles, self.err, stop)
        with started.deterministic():
            try:
                self._frames(started, stop)
            except NonFiniteCostError as error:
                self.err.write(f"{PROG}: error: frame {self.done + 1}: {error}; the frames before it are saved\n")
                return EXIT_NON_FINITE
            finally:
                self.logs.close_all()
        return EXIT_SAVE_FAILED if self.saver.failed else EXIT_OK

    def _frames(self, started, stop):
        from ...runs.many_images import Finished
        from ...runs.video_frames import VideoStylizer

        job, size = self.job, self.job.size
        make = guided_objective(job, started.make_objective)  # --content_mask on every frame
        stylizer = VideoStylizer(
            started.model,
            job.styles,
            job.config,
            job.options,
            make_objective=lambda m, c, s, config, extra: make(m, c, s, config, size=size, extra_terms=extra),
        )
        kept, index = {}, -1
        for index, pixels in enumerate(frames(job.clip)):
            stop.check()
            if index >= job.clip.frames:
                break  # ffmpeg counted fewer when probing: the frames counted are the video's
            pixels = fitted(pixels, size[1], size[0], job.fit, job.clip.path)
            if index >= self.done:
                earlier = {gap: self._earlier(kept, index - gap) for gap in job.options.gaps if index - gap in kept}
                for item in stylizer.frame(index, pixels, earlier, ticks=True):
                    stop.check()
                    if isinstance(item, Finished):
                        self.logs.close(self._run_name(index))
                        self._finished(index, item)
                    else:
                        done = getattr(item.item, "iterations", None)
                        if done is None:
                            self.logs.record(self._run_name(index), item.item, item.item.iteration)
                        self._progress(index, item.item.iteration + 1 if done is None else done)
                if self.saver.failed:
                    return
            kept[index] = pixels
            kept.pop(index - max(job.options.gaps), None)
        if index + 1 < job.clip.frames:
            raise NSTError(f"{quoted(job.clip.path)}: it ended after {index + 1} of its {job.clip.frames} frames")

    def _run_name(self, index):
        """Frame ``index``'s run under --log_dir: ``<video stem>/<frame number>``, e.g. ``clip/000001``."""
        stem = os.path.splitext(os.path.basename(self.job.output))[0]
        return os.path.join(stem, os.path.splitext(frame_name(index))[0])

    def _earlier(self, kept, index):
        """Frame ``index`` as the temporal term needs it: its content pixels and its saved stylized frame."""
        from ...runs.video_frames import Earlier

        pixels = _saved_frame(self.job, index)
        stylized = reshape_and_normalize_image(pixels, self.job.config.normalization)
        return Earlier(kept[index], stylized.astype("float32"))

    def _progress(self, index, iterations):
        first = self.job.options.first_epochs(self.job.config.epochs)
        before = 0 if index == 0 else first + (index - 1) * self.job.config.epochs
        self.bar.update(min(self.bar.total, before + iterations))

    def _finished(self, index, item):
        name = frame_name(index)
        with self.writing:
            # Saved aside, recorded, then renamed: a kill between leaves a leftover (removed next run) or a
            # recorded frame missing (made again), never an unrecorded frame file, which could be the user's.
            if not self.saver.save(_pending(name), item.progress.image):
                return
            self.job.manifest.add(
                input=f"{self.job.clip.path}#{index}",
                output=name,
                costs=costs(item.progress),
                iterations=item.progress.iteration + 1,
                seconds=round(item.seconds, 3),
            )
            folder = self.job.frames_folder
            try:
                os.replace(os.path.join(folder, _pending(name)), os.path.join(folder, name))
            except OSError as error:
                self.err.write(f"{PROG}: error: cannot save {quoted(os.path.join(folder, name))}: {error.strerror}\n")
                self.saver.failed = True
                return
            self.done = index + 1
        saved = quoted(os.path.normpath(os.path.join(self.job.frames_folder, name)))
        self.out.write(f"saved {saved} ({index + 1} of {self.job.clip.frames})\n")
        self.out.flush()

    def _encode(self, stop):
        job = self.job
        height, width = job.size
        # Created as open() creates files: the video gets the umask's permissions, as the frames do.
        handle, self.partial = new_file(job.folder, _PARTIAL_SUFFIX, prefix=_partial_prefix(job.output))
        os.close(handle)

        def stylized():
            for index in range(job.clip.frames):
                stop.check()
                yield _saved_frame(job, index)

        audio, said = job.clip.path if job.clip.audio else None, ""
        try:
            try:
                encode(self.partial, stylized(), (width, height), job.clip.fps, audio)
            except FfmpegError:
                if audio is None:
                    raise
                # An audio codec the MP4 container cannot hold as it is (Microsoft ADPCM, WMA, mu-law).
                encode(self.partial, stylized(), (width, height), job.clip.fps, audio, audio_codec="aac")
                said = " encoded again as AAC"
        except FfmpegError as error:  # named by the video it was to make, not the temporary file
            raise NSTError(f"{quoted(job.output)} could not be encoded: {error.problem}") from None
        stop.check()
        made = count_frames(self.partial)
        if made != job.clip.frames:
            raise NSTError(f"the encoded video has {made} of the {job.clip.frames} frames; it is not kept")
        try:
            os.link(self.partial, job.output)  # fails if the name was taken meanwhile: nothing is replaced
        except FileExistsError:
            raise NSTError(f"{quoted(job.output)} appeared while the video was encoded; it is left as it is") from None
        except OSError as error:
            raise NSTError(f"cannot write {quoted(job.output)}: {error.strerror or error}") from None
        job.manifest.add(input=job.clip.path, output=video_record(job.output), frames=job.clip.frames)
        seconds = time.monotonic() - self.began
        self.out.write(
            f"done: {job.clip.frames} frames in {seconds:.1f} s; saved {quoted(job.output)} ({job.clip.frames} "
            f"frames at {job.clip.fps:g} per second{', with its audio' + said if job.clip.audio else ''})\n"
        )
        return EXIT_OK

    def remove_partial(self):
        """Removes the encoding's temporary file, if any; never raises."""
        if self.partial is not None:
            with contextlib.suppress(OSError):
                os.remove(self.partial)
            self.partial = None

    def stopped(self, status):
        """The last line after a signal; the finished frames stay. Returns ``status``."""
        with self.writing:
            self.remove_partial()
            self.err.write(
                f"\n{PROG}: {stop_words(status - 128)} after {self.done} of {self.job.clip.frames} frames; the "
                f"finished ones are saved in {quoted(self.job.frames_folder)}: the same command goes on from there\n"
            )
            return status


def _pending(name):
    """The name frame ``name`` is saved under until its manifest line is written: ``.000001.pending.png``."""
    return f".{os.path.splitext(name)[0]}.pending.png"


#: What a killed run may leave in a frames folder: a frame saved but not recorded (``_pending``), and
#: ``save_image``'s own temporary file.
_LEFTOVER_FRAME = re.compile(r"\.(?:(?!0+\.)[0-9]{6,}\.pending|nst_tf-[0-9a-f]{16})\.png")
_PARTIAL_SUFFIX = ".partial.mp4"


def _partial_prefix(output):
    return f".{os.path.basename(output)}."


def _partials(folder, output):
    """The partial videos of ``output`` in ``folder``: ``.<stem>.mp4.<16 hex digits>.partial.mp4`` (``_encode``'s)."""
    pattern = re.compile(re.escape(_partial_prefix(output)) + r"[0-9a-f]{16}" + re.escape(_PARTIAL_SUFFIX))
    return [os.path.join(folder, name) for name in os.listdir(folder) if pattern.fullmatch(name)]


def _remove_leftovers(job):
    """Removes what a killed run of this job left: frames saved but not recorded, and partial videos."""
    frames = [os.path.join(job.frames_folder, n) for n in os.listdir(job.frames_folder) if _LEFTOVER_FRAME.fullmatch(n)]
    for path in frames + _partials(job.folder, job.output):
        if os.path.isfile(path) and not os.path.islink(path):
            with contextlib.suppress(OSError):
                os.remove(path)


def linked_partial(folder, output):
    """The partial video in ``folder`` that ``output`` is a hard link of (a run killed between naming the
    complete video and recording it), or None."""
    if not os.path.isfile(output) or os.path.islink(output):
        return None
    for path in _partials(folder, output):
        with contextlib.suppress(OSError):
            if os.path.samefile(path, output):
                return path
    return None


def _saved_frame(job, index):
    """The pixels of stylized frame ``index`` as saved; ``NSTError`` where it cannot be read or is not of the
    job's size (changed since the job began)."""
    path = os.path.join(job.frames_folder, frame_name(index))
    advice = "delete it and run the same command again to make it again"
    try:
        pixels = read_image(path)
    except NSTError as error:
        raise NSTError(f"frame {index + 1} cannot be read ({error}); {advice}") from None
    if pixels.shape[:2] != tuple(job.size):
        height, width = pixels.shape[:2]
        raise NSTError(
            f"frame {index + 1} ({quoted(path)}) is {width}x{height}, not the video's {job.size[1]}x{job.size[0]}; "
            f"{advice}"
        )
    return pixels


def video_record(output):
    """The manifest's name for the video ``output``: ``../<stem>.mp4``, relative to the frames folder."""
    return os.path.join(os.pardir, os.path.basename(output))
