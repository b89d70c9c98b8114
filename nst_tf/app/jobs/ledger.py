"""The bookkeeping of a many-image job, whichever engine runs it: each result saved and recorded, the last lines."""

import os
import signal
import threading
import time

from ...ground.errors import NSTError, quoted
from ...ground.statuses import EXIT_NON_FINITE, EXIT_OK, EXIT_SAVE_FAILED, EXIT_SKIPPED, PROG
from ..signals import Stopped, stop_words
from .drive import ProgressLine


class Ledger:
    """What a many-image job saved, skipped and lost; its progress line, its last line and its status.
    ``done``: members ended with a result (saved, or kept elsewhere); ``skipped``: those unreadable at their
    turn; ``non_finite``: those whose cost became NaN or infinite; ``under_way``: those running now."""

    def __init__(self, job, out, err):
        self.job, self.out, self.err = job, out, err
        self.saver = job.outputs.saver(err)
        self.began = time.monotonic()
        self.done, self.skipped, self.non_finite, self.under_way = 0, [], [], []
        self.bar = ProgressLine(max(1, len(job.members)) * job.config.epochs, err)
        # Held while a result and its manifest line are written: the watcher's last line (``stopped``)
        # waits for them, so a signal never leaves an image without its line. A signal meanwhile is
        # recorded as at any other moment (ignoring signals here lost them).
        self.writing = threading.RLock()

    def follow(self, work, stop):
        """Runs ``work()`` (every member); returns the exit status, a signal's (``stopped``) if one ended it."""
        try:
            work()
        except (KeyboardInterrupt, Stopped) as stopped:
            stop.claim()
            return self.stopped(128 + getattr(stopped, "signum", signal.SIGINT))
        stop.claim()
        return self.status()

    def progress(self, iterations):
        """Draws the progress line: ``iterations`` of the members under way done, beyond the ended ones'."""
        self.bar.update(min(self.bar.total, self.done * self.job.config.epochs + iterations))

    def finished(self, member, progress, seconds, worker=None):
        """Saves ``member``'s result (its run's last ``Progress``), records it in the manifest with its wall time
        ``seconds`` and ``worker`` (``host:pid``; default: this process), and says so."""
        with self.writing:
            saved = self.saver.save(member.name, progress.image) and self._record(member, progress, seconds, worker)
            self.done += 1
            self.under_way = [m for m in self.under_way if m is not member]
        if saved:
            path = os.path.join(self.job.outputs.folder, member.name)
            self.out.write(f"saved {quoted(path)} ({self.done} of {len(self.job.members)})\n")
            self.out.flush()

    def _record(self, member, progress, seconds, worker):
        """Appends ``member``'s manifest line; returns whether it could (else its saved result is withdrawn:
        an unrecorded result would be taken for a file of the user's, and block the rerun)."""
        try:
            self.job.manifest.add(
                input=member.path,
                input_sha256=member.digest,
                styles=[self.job.style_paths[i] for i in member.styles],
                output=member.name,
                costs=costs(progress),
                iterations=progress.iteration + 1,
                seconds=round(seconds, 3),
                worker=worker,
            )
            return True
        except NSTError as error:
            why = f"{error}; {quoted(member.name)} is removed from the folder, as it could not be recorded"
            self.saver.withdraw(member.name, progress.image, why)
            return False

    def skip(self, member, error):
        """Notes that ``member``'s content image could not be read at its turn (``error``: the reason)."""
        # With --on_error refuse every image was read before any work: this one changed since.
        why = "" if self.job.skip_errors else " (it changed since it was checked)"
        self.skipped.append(member)
        self.err.write(f"{PROG}: note: skipped {quoted(member.path)}{why}: {error}\n")

    def lose(self, members, error):
        """Notes that ``members`` (a batch) ended with a NaN or infinite cost: ``error``; nothing is saved."""
        names = ", ".join(quoted(member.path) for member in members)
        self.non_finite.extend(members)
        self.err.write(f"{PROG}: error: {names}: {error}; no result is saved for it\n")
        self.under_way = [m for m in self.under_way if m not in members]

    def stopped(self, status):
        """Writes the last line after a signal (the images under way are dropped); returns ``status``. Waits
        for a result being written (``writing``), so that the line counts it."""
        with self.writing:
            what = stop_words(status - 128)
            names = [quoted(member.path) for member in self.under_way]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            under_way = f" ({shown} {'was' if len(names) == 1 else 'were'} under way, not saved)" if names else ""
            self.err.write(
                f"\n{PROG}: {what} after {self.done} of {len(self.job.members)} images{under_way}; the finished ones "
                "are saved and recorded: the same command does the rest\n"
            )
            return status

    def status(self):
        """The exit status after every member ran (a note first when some were skipped), after the summary line."""
        if self.skipped:
            were = "was" if len(self.skipped) == 1 else "were"
            self.err.write(f"{PROG}: note: {len(self.skipped)} of {len(self.job.members)} images {were} skipped\n")
        seconds = time.monotonic() - self.began
        self.out.write(
            f"done: {self.done} of {len(self.job.members)} images in {seconds:.1f} s; saved in "
            f"{quoted(self.job.outputs.folder)}\n"
        )
        if self.saver.failed:
            return EXIT_SAVE_FAILED
        if self.non_finite:
            return EXIT_NON_FINITE
        return EXIT_SKIPPED if self.skipped else EXIT_OK


def costs(progress):
    """A ``Progress``'s costs as the manifest records them: each term's by name, and the total."""
    return {name: float(value) for name, value in progress.costs.items()}
