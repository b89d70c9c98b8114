"""What a run saves, when and under which names (report images named by the preset every ``print_every``
iterations of the last scale, ``scale1.png`` ... for earlier scales, ``generated_image.jpg``); the output folder's
checks; saving with a rescue.
"""

import contextlib
import dataclasses
import os
import re
import tempfile
import threading

from ...ground.errors import NSTError, quoted
from ...ground.files import identities, identity
from ...ground.statuses import PROG
from ...plan.config import StyleTransferConfig
from ..signals import rescue_folder

FINAL_IMAGE = "generated_image.jpg"

#: The names of earlier scales' results: ``scale1.png``, ``scale2.png``, ...
_SCALE_IMAGE = re.compile(r"^scale([1-9][0-9]*)\.png$")


def numbered(template):
    """A compiled pattern of the names ``template`` (with ``{i}``, e.g. ``"{i}.png"``) gives report images;
    group 1 is the iteration."""
    return re.compile("^" + re.escape(template).replace(re.escape("{i}"), r"(0|[1-9][0-9]*)") + "$")


@dataclasses.dataclass(frozen=True)
class Outputs:
    """The images one run saves in ``folder`` (created by ``prepare``): ``config`` gives ``epochs``,
    ``print_every`` and the ``normalization``; ``report_image`` names report images with ``{i}``; of ``scales``
    sizes, each but the last saves its result. ``final``: the final image's path when the user named it (``-o``;
    by default ``generated_image.jpg`` in the folder); ``keep_reports``: whether report and scale images are
    saved (not for ``-o FILE`` without ``--output_dir``)."""

    folder: str
    config: StyleTransferConfig
    report_image: str
    scales: int = 1
    final: str = None
    keep_reports: bool = True

    @property
    def final_path(self):
        """The final image's path."""
        return self.final if self.final is not None else os.path.join(self.folder, FINAL_IMAGE)

    @property
    def final_name(self):
        """The final image's name for ``Saver.save`` (a path of its own where the user named it)."""
        return FINAL_IMAGE if self.final is None else os.path.abspath(self.final)

    @property
    def scale_images(self):
        """The file names of each earlier scale's result: ``["scale1.png", ...]``."""
        return [f"scale{scale}.png" for scale in range(1, self.scales)]

    def report_name(self, iteration):
        """The report image's file name for ``iteration``."""
        return self.report_image.format(i=iteration)

    def reports(self, iteration):
        """Whether ``iteration`` (of the last scale, from 0) has its costs printed and its image saved: every
        ``print_every``-th does. The last iteration is reported too (``config.is_report``) but saved only as
        the final image, as the course does."""
        return 0 <= iteration < self.config.epochs and iteration % self.config.print_every == 0

    def _is_scale_image(self, name):
        """Whether ``name`` is one of ``scale_images``, without listing them (``scales`` may be absurd)."""
        match = _SCALE_IMAGE.match(name)
        return bool(match) and int(match.group(1)) < self.scales

    def _ours(self, name, pattern):
        """Whether this run would save an image named ``name`` (``pattern``: the report images')."""
        if name == FINAL_IMAGE and self.final is None:
            return True
        match = pattern.match(name)
        return self.keep_reports and (self._is_scale_image(name) or bool(match and self.reports(int(match.group(1)))))

    def check(self, inputs):
        """Refuses, before anything is created, outputs that would fail or destroy one of ``inputs`` (the run's
        images and weights file; None is passed over): ``NSTError`` as ``check_saves`` raises it."""
        pattern = numbered(self.report_image)
        sources = identities(inputs)
        check_saves(self.folder, lambda name: self._ours(name, pattern), sources, "run", "this run")
        if self.final is not None:
            folder, name = os.path.split(self.final)
            check_saves(folder or ".", lambda entry: entry == name, sources, "run", "this run", option="--output")

    def earlier_reports(self):
        """How many files in the folder have a report image's name, whatever their iteration."""
        pattern = numbered(self.report_image)
        return sum(1 for entry in listing(self.folder) if pattern.match(entry.name))

    def earlier_scale_images(self):
        """The names of this run's ``scale_images`` already in the folder, in scale order (``NSTError`` when
        the folder cannot be listed)."""
        found = [entry.name for entry in listing(self.folder) if self._is_scale_image(entry.name)]
        return sorted(found, key=lambda name: int(_SCALE_IMAGE.match(name).group(1)))

    def prepare(self):
        """Creates the folder and proves it writable, before any work starts; returns whether it was created
        (``remove_if_empty`` then undoes it). ``NSTError`` when it cannot be created or written to."""
        created = not os.path.isdir(self.folder)
        try:
            os.makedirs(self.folder, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.folder):
                pass
        except OSError as error:
            option = "--output_dir" if self.keep_reports else "--output"
            raise NSTError(f"{option}: cannot write to {quoted(self.folder)}: {_reason(error)}") from None
        return created

    def remove_if_empty(self):
        """Removes the folder if it is empty (a run stopped before it saved anything); never raises."""
        with contextlib.suppress(OSError):
            os.rmdir(self.folder)

    def saver(self, err):
        """A ``Saver`` into this folder that writes its failures to ``err``."""
        return Saver(self.folder, self.config.normalization, err)


def listing(folder, option="--output_dir"):
    """The entries of ``folder`` (none when there is nothing there yet); ``NSTError`` naming ``option`` when it
    is no folder or cannot be listed."""
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise NSTError(f"{option}: {quoted(folder)} exists and is not a folder")
        return []
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as error:
        raise NSTError(f"{option}: cannot read {quoted(folder)}: {_reason(error)}") from None


def check_saves(folder, ours, sources, owner, who, option="--output_dir"):
    """The paths of the files in ``folder`` with a name ``ours(name)`` accepts; ``NSTError`` when the folder
    cannot be listed or such a name is held by a symbolic link (dangling, looping or not: saving would write
    through it), a folder, or an input (``sources``: ``ground.files.identities``). The folder is listed once,
    never the names one by one (they grow with ``epochs`` and ``scales``). ``owner`` and ``who`` name what
    saves in the messages, e.g. "run" and "this run", "job" and "--reports"; ``option``: the option that named
    the folder.
    """
    found = []
    fix = "another --output_dir" if option == "--output_dir" else f"another {option} file"
    for entry in listing(folder, option):
        if not ours(entry.name):
            continue
        held = "a symbolic link" if entry.is_symlink() else "a folder" if entry.is_dir() else None
        if held:
            raise NSTError(
                f"{option}: {quoted(entry.path)} is {held}; {who} would save an image under that name (remove "
                f"it or choose {fix})"
            )
        source = sources.get(identity(entry.path))
        if source is not None:
            raise NSTError(
                f"{option}: {quoted(entry.path)} is the {owner}'s input {quoted(source)}; {who} would overwrite it"
            )
        found.append(entry.path)
    return found


class Saver:
    """Saves images into a folder; a failure is written to ``err`` and kept, not raised, and the image rescued.
    ``failed``: whether any save failed."""

    def __init__(self, folder, normalization, err):
        self.folder, self.normalization, self.err = folder, normalization, err
        self.failed = False
        self._lock = threading.Lock()

    def save(self, name, image):
        """Saves normalized ``image`` as ``name`` in the folder; on failure writes one line and saves it in $TMPDIR
        or ~ instead. Returns whether it was saved where asked. One save at a time: the signal watcher's final
        save waits for one the main thread began."""
        from ...tensors.images import save_image

        path = os.path.join(self.folder, name)
        with self._lock:
            try:
                # A link planted after ``Outputs.check`` is refused too, and the image rescued.
                save_image(path, image, self.normalization, through_links=False)
                return True
            except (NSTError, OSError) as error:
                detail = str(error) if isinstance(error, NSTError) else f"{quoted(path)}: {_reason(error)}"
                self._keep_elsewhere(name, image, f"cannot save {detail}")
                return False

    def withdraw(self, name, image, why):
        """Removes ``name``, saved but not to be kept there (``why``: the reason, e.g. its record could not be
        written), and keeps ``image`` elsewhere as a failed save does."""
        with self._lock:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(self.folder, name))
            self._keep_elsewhere(name, image, why)

    def _keep_elsewhere(self, name, image, why):
        rescued = self._rescue(name, image)
        where = f"; the image was saved to {quoted(rescued)} instead" if rescued else "; no other place could take it"
        self.err.write(f"{PROG}: error: {why}{where}\n")
        self.failed = True

    def _rescue(self, name, image):
        """Saves ``image`` in the temporary folder or else the home folder; returns the path, or None."""
        from ...tensors.images import save_image

        stem, extension = os.path.splitext(name)
        for folder in (rescue_folder(), os.path.expanduser("~")):
            path = None
            try:
                # A new file under an unpredictable name (O_EXCL): never a link another user planted.
                handle, path = tempfile.mkstemp(prefix=f"nst_tf-{os.getpid()}-{stem}-", suffix=extension, dir=folder)
                os.close(handle)
                save_image(path, image, self.normalization, through_links=False)
                return path
            except (NSTError, OSError):
                if path is not None:  # the empty placeholder of a failed rescue is not left behind
                    with contextlib.suppress(OSError):
                        os.remove(path)
        return None


def _reason(error):
    """An ``OSError``'s reason without its errno and path."""
    return getattr(error, "strerror", None) or str(error)
