"""Video files: recognised by content, probed, decoded frame by frame and encoded, with imageio-ffmpeg.

imageio-ffmpeg (``pip install "nst_tf[video]"``) ships an ffmpeg binary, run as a subprocess: frames pass as raw RGB
through a pipe one at a time, so memory holds one frame however long the video. Nothing here loads TensorFlow.
"""

import contextlib
import dataclasses
import fractions
import math
import numbers
import os
import re
import subprocess
import tempfile

from ..ground.errors import NSTError, last_line, quoted
from ..ground.files import open_regular
from ..ground.checks import MAX_SIDE

#: Leading bytes of the containers nst_tf takes as video (offset, bytes): MP4/MOV/3GP (an ISO
#: "ftyp" box), Matroska/WebM, AVI, MPEG program stream, FLV, Ogg.
_SIGNATURES = (
    (4, b"ftyp"),
    (0, b"\x1a\x45\xdf\xa3"),
    (8, b"AVI "),
    (0, b"\x00\x00\x01\xba"),
    (0, b"FLV\x01"),
    (0, b"OggS"),
)


#: The highest frame rate taken, frames per second: above it, a header's rate is not a video's.
MAX_FPS = 1000


def is_video_file(path):
    """Whether ``path`` is a file whose first bytes are those of a video container (its name is not looked at)."""
    try:
        # Never blocks: a FIFO or a device is not a video file (the image reader names what it is).
        with open_regular(path) as handle:
            head = handle.read(16)
    except (OSError, ValueError):
        return False
    return any(head[offset : offset + len(magic)] == magic for offset, magic in _SIGNATURES)


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise NSTError('video needs imageio-ffmpeg: pip install "nst_tf[video]" (or pip install imageio-ffmpeg)')
    return imageio_ffmpeg


@dataclasses.dataclass(frozen=True)
class Clip:
    """A video file's facts: ``path``, ``fps``, ``frames`` (counted by decoding), ``size`` (width, height),
    and whether it has an ``audio`` track."""

    path: str
    fps: float
    frames: int
    size: tuple
    audio: bool


def probe(path):
    """The ``Clip`` of video file ``path``; ``NSTError`` for no video ffmpeg can decode, no frames, an absurd
    frame rate, or frames over twice ``PIL.Image.MAX_IMAGE_PIXELS`` (checked before any frame is decoded)."""
    ffmpeg = _ffmpeg()
    # What ffmpeg says of the streams: ``ffmpeg -i path`` without an output, on standard error.
    header = _run(ffmpeg, ["-hide_banner", "-i", _file(path)], path, timeout=60).stderr.decode(errors="replace")
    stream = re.search(r"^\s*Stream #\S+: Video: (.*)$", header, re.MULTILINE)
    if stream is None:
        if "End of file" in header:
            raise NSTError(f"{quoted(path)}: the video has no frames")
        problem = last_line(header) if "Invalid data" in header or "Error" in header else "it has no video stream"
        raise NSTError(f"{quoted(path)}: not a video ffmpeg can read: {problem}")
    size = re.search(r", (\d+)x(\d+)[\s,]", stream.group(1))
    rate = re.search(r", ([\d.]+)(k?) (?:fps|tbr)", stream.group(1))
    width, height = (int(size.group(1)), int(size.group(2))) if size else (0, 0)
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", header)
    if rotation and round(float(rotation.group(1))) % 180 == 90:
        width, height = height, width  # ffmpeg turns the frames upright as it decodes them
    fps = float(rate.group(1)) * (1000 if rate.group(2) else 1) if rate else 0.0
    _check_frames(path, width, height, fps)
    count = _count(ffmpeg, path)
    if count < 1:
        raise NSTError(f"{quoted(path)}: the video has no frames")
    audio = re.search(r"^\s*Stream #\S+: Audio: ", header, re.MULTILINE) is not None
    return Clip(path=path, fps=fps, frames=count, size=(width, height), audio=audio)


def _count(ffmpeg, path):
    """The number of frames of ``path``'s first video stream, decoded as ``frames`` does (imageio-ffmpeg's
    ``count_frames_and_secs`` lets ffmpeg read the terminal: a command in a shell's background got SIGTTOU)."""
    arguments = ["-v", "error", "-nostats", "-progress", "pipe:1", "-i", _file(path), "-map", "0:v:0"]
    run = _run(ffmpeg, [*arguments, "-fps_mode", "passthrough", "-f", "null", "-"], path)
    if run.returncode != 0:
        problem = last_line(run.stderr.decode(errors="replace"))
        raise NSTError(f"{quoted(path)}: its frames cannot be counted: {problem}")
    counts = re.findall(rb"^frame=(\d+)\s*$", run.stdout, re.MULTILINE)
    return int(counts[-1]) if counts else 0


def _run(ffmpeg, arguments, path, timeout=None):
    """Runs ffmpeg with ``arguments``; returns the ``CompletedProcess`` (output as bytes). ffmpeg never reads
    the terminal (``-nostdin``) and runs in a session of its own: Ctrl-C reaches the command, which ends
    ffmpeg, not ffmpeg first (its early exit would read as a damaged file)."""
    command = [_executable(ffmpeg), "-nostdin", *arguments]
    try:
        with _started(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            out, err = process.communicate(timeout=timeout)
    except (OSError, subprocess.SubprocessError) as error:
        raise NSTError(f"{quoted(path)}: ffmpeg could not run: {last_line(error)}") from None
    return subprocess.CompletedProcess(command, process.returncode, out, err)


#: The ffmpeg processes running now (``_started``), which ``end_ffmpeg`` kills.
_RUNNING = set()


@contextlib.contextmanager
def _started(command, stdin=subprocess.DEVNULL, **streams):
    """Runs ``command`` in a session of its own for the block; it is killed if still running after it."""
    process = subprocess.Popen(command, stdin=stdin, start_new_session=True, **streams)
    _RUNNING.add(process)
    try:
        with process:  # closes its pipes and waits for it
            try:
                yield process
            finally:
                if process.poll() is None:
                    process.kill()
    finally:
        _RUNNING.discard(process)


def end_ffmpeg():
    """Kills the ffmpeg processes this process runs now: for a stop that ends the process at once
    (``os._exit`` skips the blocks that would), as ffmpeg runs in a session of its own."""
    for process in list(_RUNNING):
        with contextlib.suppress(OSError):
            process.kill()


def _executable(ffmpeg):
    try:
        return ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:  # imageio-ffmpeg found no binary for this platform
        raise NSTError(f"video needs an ffmpeg binary: {last_line(error)}") from None


def _check_frames(path, width, height, fps):
    import PIL.Image

    limit = 2 * PIL.Image.MAX_IMAGE_PIXELS if PIL.Image.MAX_IMAGE_PIXELS else MAX_SIDE
    if not (width > 0 and height > 0):
        raise NSTError(f"{quoted(path)}: the video has no frames of a size ffmpeg can tell")
    if width * height > limit:
        # Each decoded frame is width x height x 3 bytes in one piece: bounded as images are.
        raise NSTError(
            f"{quoted(path)}: its frames are {width}x{height} pixels, more than {limit:,} (twice "
            "PIL.Image.MAX_IMAGE_PIXELS, the limit for images too)"
        )
    if not 0 < fps <= MAX_FPS:
        raise NSTError(f"{quoted(path)}: its frame rate is {fps:g} per second; not a video nst_tf can encode again")


def frames(clip):
    """Yields ``clip``'s frames in order, uint8 (height, width, 3), decoded one at a time as raw RGB on a pipe
    (imageio-ffmpeg's ``read_frames`` leaves its pipes open when the video ends: unclosed files); ``NSTError``
    where the file can no longer be decoded (it changed since it was probed)."""
    import numpy as np

    width, height = clip.size
    size = width * height * 3
    # The stream probed, at the size probed: a file changed since gives frames of that size, never
    # bytes cut at the wrong places.
    command = [_executable(_ffmpeg()), "-v", "error", "-nostdin", "-i", _file(clip.path), "-map", "0:v:0"]
    command += ["-s", f"{width}x{height}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-fps_mode", "passthrough", "-"]
    # A session of its own (``_started``): Ctrl-C reaches the command alone, which ends ffmpeg. Its
    # messages go to a file: a damaged stream's many lines would fill a pipe nobody reads yet.
    with tempfile.TemporaryFile() as errors, _started(command, stdout=subprocess.PIPE, stderr=errors) as process:
        while True:
            data = process.stdout.read(size)
            if not data:
                break
            if len(data) != size:
                raise NSTError(f"{quoted(clip.path)}: a frame ends after {len(data)} of its {size} bytes")
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
        if process.wait() != 0:
            raise NSTError(f"{quoted(clip.path)}: cannot be decoded: {_said(errors, process.returncode)}")


def _said(errors, status):
    """The last line ffmpeg wrote to the file ``errors``, or its exit status."""
    errors.seek(max(0, errors.seek(0, os.SEEK_END) - 65536))  # its last lines say why
    said = errors.read().decode(errors="replace")
    return last_line(said) if said.strip() else f"ffmpeg ended with status {status}"


class FfmpegError(NSTError):
    """ffmpeg failed while encoding (a full disk, an audio codec MP4 cannot hold); ``problem``: its last line."""

    def __init__(self, message, problem):
        super().__init__(message)
        self.problem = problem


def encode(path, frames_in_order, size, fps, audio_from=None, audio_codec="copy"):
    """Writes ``frames_in_order`` (uint8 (height, width, 3), ``size`` = (width, height)) as H.264 video to ``path``.

    ``audio_from``: a video whose first audio track is taken as it is (``audio_codec="copy"``) or encoded again
    (``"aac"``). ``path`` is overwritten. Frames go through our own pipe (imageio-ffmpeg's ignores the exit status).

    Raises:
        FfmpegError: ffmpeg fails, or ends before taking every frame.
        NSTError: sides that are not even (H.264's 4:2:0 colour), a frame rate not from 0 to 1000, or no frames.
    """
    import numpy as np

    width, height = size
    if not all(isinstance(side, int) and side > 0 and side % 2 == 0 for side in size):
        raise NSTError(f"the video's size must be two even whole numbers (H.264's 4:2:0 colour); got {size!r:.60}")
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise NSTError(f"the frame rate must be a number from 0 to {MAX_FPS} per second; got {fps!r:.40}")
    command = [_executable(_ffmpeg()), "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    command += ["-s", f"{width}x{height}", "-r", str(fractions.Fraction(fps).limit_denominator()), "-i", "pipe:0"]
    if audio_from is not None:
        command += ["-i", _file(audio_from), "-map", "0:v:0", "-map", "1:a:0", "-c:a", audio_codec]
    command += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10", "-f", "mp4", _file(path)]
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg never waits on us to read it
        # A session of its own: Ctrl-C reaches the command, which ends ffmpeg (see ``_started``).
        with _started(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors) as process:
            count = 0
            try:
                for frame in frames_in_order:  # the callers' frames are read back at the video's size
                    process.stdin.write(memoryview(np.ascontiguousarray(frame, np.uint8)).cast("B"))
                    count += 1
                process.stdin.close()
            except (BrokenPipeError, ConnectionResetError):  # ffmpeg ended early: its message says why
                with contextlib.suppress(OSError):
                    process.stdin.close()  # what is left in its buffer has nowhere to go
            status = process.wait()
        if status != 0:
            problem = _said(errors, status)
            raise FfmpegError(f"ffmpeg could not encode {quoted(path)}: {problem}", problem)
        if count == 0:
            raise NSTError("no frames to encode")


def count_frames(path):
    """The number of frames of video ``path``'s first video stream, counted by decoding them; ``NSTError`` else."""
    return _count(_ffmpeg(), path)


def _file(path):
    """``path`` as ffmpeg must be given it: a name like ``take:2.mp4`` would be read as a protocol."""
    return "file:" + os.path.abspath(path)


def even(value):
    """``value`` rounded down to an even number (at least 2): H.264's 4:2:0 colour needs even sides."""
    return max(2, int(value) - int(value) % 2)


def frame_name(index):
    """The file name of frame ``index`` (from 0) in a video's frames folder: ``000001.png`` for the first."""
    return f"{index + 1:06d}.png"


def is_frame_name(name):
    """Whether ``name`` is one ``frame_name`` gives: 6 digits or more (frame 1,000,000 on), then ``.png``."""
    digits = name[:-4]
    return name.endswith(".png") and len(digits) >= 6 and digits.isascii() and digits.isdigit() and int(digits) > 0
