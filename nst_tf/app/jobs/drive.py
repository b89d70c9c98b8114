"""The drive loop: follows a ``CoarseToFine`` run to its end or a stop, printing scale headers and report lines,
saving what ``Outputs`` says is due, drawing a progress line, stopping between traced calls on a signal, saving
the last finite image on a NaN cost and the final image however the run ended.
"""

import contextlib
import io
import os
import signal
import time

from ...ground.errors import NonFiniteCostError, quoted
from ...ground.statuses import EXIT_NON_FINITE, EXIT_OK, EXIT_SAVE_FAILED, PROG
from ..signals import Stopped, draws_unended_line, handling_signals, stop_words


class ProgressLine:
    """A progress bar with ETA on ``stream``: on a terminal one line redrawn in place (``\\r``), erased before
    any other line written there, ended at the last iteration; on a pipe or in a file a line at each report, at
    the first iteration, the first known ETA and the last, and at most one every ``interval`` seconds between.
    The ETA is taken from iterations after the first (which traces the loop).
    """

    interval = 10.0

    def __init__(self, total, stream):
        self.total = total
        self.stream = stream
        self.start = time.monotonic()
        self.first_done = None
        self.tty = _isatty(stream)
        self.written = None  # when the last line went to a pipe or a file
        self.eta_written = False
        self.width = 0  # of the line drawn on the terminal
        self.ended = False

    def update(self, done, report=False):
        """Draws the bar for ``done`` of ``total`` iterations (ending the line at the last); ``report``: a
        report was just written (on a pipe or in a file, a line is then due)."""
        if self.ended:
            return
        now = time.monotonic()
        if self.first_done is None:
            self.first_done = (now, done)
        since, base = self.first_done
        eta = (now - since) / (done - base) * (self.total - done) if done > base else float("nan")
        self.ended = done == self.total
        filled = int(30 * done / self.total)
        bar = "=" * filled + ">" * (filled < 30) + "." * (29 - filled)
        text = f"[{bar}] {done}/{self.total}  {now - self.start:.0f}s elapsed  ETA {_duration(eta)}"
        if self.tty:
            self._draw(text)
        elif report or self.ended or self._due(now, eta == eta):
            self.written, self.eta_written = now, self.eta_written or eta == eta
            self.stream.write(text + "\n")
            self.stream.flush()

    def _due(self, now, eta_known):
        """Whether a line is due on a pipe or in a file between reports: the first, the first with an ETA, or
        one ``interval`` after the last."""
        return self.written is None or (eta_known and not self.eta_written) or now - self.written >= self.interval

    def _draw(self, text):
        """Redraws the terminal's line as ``text``, cut to the terminal's width (a wrapped line cannot be)."""
        columns = _columns(self.stream)
        text = text[: columns - 1] if columns > 1 else text
        self.stream.write("\r" + text + " " * (self.width - len(text)) + ("\n" if self.ended else ""))
        self.stream.flush()
        self.width = 0 if self.ended else max(self.width, len(text))
        if not self.ended:
            draws_unended_line(self.stream, self.width)


def _isatty(stream):
    """Whether ``stream`` writes to a terminal (False for a closed one)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _columns(stream):
    """The width of the terminal ``stream`` writes to; 0 where unknown."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 0


def _duration(seconds):
    """``seconds`` as H:MM:SS; "?" for NaN."""
    if seconds != seconds:
        return "?"
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def drive(start, outputs, saver, report_line, out, err, stop, context=None, log=None):
    """Runs the coarse-to-fine run ``start()`` returns (called inside, so a signal while it is set up is handled
    as one during the run) to its end, a stop (``stop``: the ``StopRequest``) or a NaN cost, saving what
    ``outputs`` says with ``saver``. Report lines, scale headers and the final path go to ``out``; the progress
    line, notes and errors to ``err``. ``context``: a context manager the optimization runs in (the final save
    comes after it). ``log``: a ``run_log.RunLog`` recording each report, or None. Returns ``EXIT_OK``,
    ``EXIT_NON_FINITE``, ``EXIT_SAVE_FAILED`` or 128 plus the signal.
    """
    followed = _Followed(outputs, saver, report_line, out, err, log)
    with context if context is not None else contextlib.nullcontext():
        try:
            followed.follow(start, stop)
            status = EXIT_OK
        except (KeyboardInterrupt, Stopped) as stopped:
            status = 128 + getattr(stopped, "signum", signal.SIGINT)
        except NonFiniteCostError as error:
            stop.claim()
            return followed.non_finite(error)
    stop.claim()
    return followed.finish(status)


class _Followed:
    """The state of one driven run: the run, the last reported iteration and where the run is."""

    def __init__(self, outputs, saver, report_line, out, err, log=None):
        from ...loop.optimize import Progress

        self.progress_type, self.outputs, self.saver, self.report_line = Progress, outputs, saver, report_line
        self.out, self.err, self.log = out, err, log
        self.transfer, self.reported, self.scale, self.last = None, -1, 0, None
        self.began = time.monotonic()

    def follow(self, start, stop):
        """Starts the run and takes its items until it ends; raises ``Stopped`` at the first item after a signal."""
        self.transfer = start()
        # From here on a stop saves the latest image, whichever thread carries it out.
        stop.finisher = self.finish
        bar = ProgressLine(self.transfer.total_iterations, self.err)
        stop.defer()
        for item in self.transfer.run(ticks=True):
            stop.check()
            self.take(item)
            bar.update(self.transfer.iteration, report=isinstance(item.item, self.progress_type))

    def take(self, item):
        """Writes the scale header and the report of a ``ScaleProgress``, and saves the images it makes due."""
        if item.scales > 1 and item.scale != self.scale:
            self.out.write(f"Scale {item.scale}/{item.scales}: {item.width}x{item.height}\n")
        self.scale, progress = item.scale, item.item
        if not isinstance(progress, self.progress_type):
            return
        if self.log is not None:  # stepped by the iterations of the whole run, across its scales
            self.log.record(progress, sum(self.transfer.epochs[: item.scale - 1]) + progress.iteration)
        if item.scale == item.scales:
            self.reported, self.last = progress.iteration, progress
            if self.outputs.reports(progress.iteration):
                self.out.write(report_text(self.report_line, progress, self.outputs.config))
                self.out.flush()
                if self.outputs.keep_reports:
                    self.saver.save(self.outputs.report_name(progress.iteration), progress.image)
        elif progress.iteration == self.transfer.epochs[item.scale - 1] - 1 and self.outputs.keep_reports:
            self.saver.save(self.outputs.scale_images[item.scale - 1], progress.image)

    def non_finite(self, error):
        """Saves the last finite image as the final one and writes the error; returns the exit status."""
        with handling_signals(signal.SIG_IGN):
            self.saver.save(self.outputs.final_name, error.last_finite_image)
        self.err.write(f"{PROG}: error: {error}; saved the last finite image to {quoted(self.outputs.final_path)}\n")
        return EXIT_SAVE_FAILED if self.saver.failed else EXIT_NON_FINITE

    def finish(self, status):
        """Saves the latest image (and a report image due but not yet saved); returns the exit status.
        ``status``: ``EXIT_OK``, or 128 plus the number of the signal that stopped the run."""
        transfer = self.transfer
        if transfer is None or transfer.current_image() is None:
            self.err.write(f"\n{PROG}: interrupted before the first iteration; nothing was saved\n")
            return status
        # Further signals are ignored while the last images are written, so a
        # second Ctrl-C cannot leave them half done.
        with handling_signals(signal.SIG_IGN):
            done = transfer.iteration
            # Numbered images are the last scale's, numbered within it.
            due = transfer.scale_iteration - 1 if transfer.scale == len(transfer.sizes) else -1
            if status != EXIT_OK and due > self.reported and self.outputs.reports(due) and self.outputs.keep_reports:
                self.saver.save(self.outputs.report_name(due), transfer.current_image())
            final_saved = self.saver.save(self.outputs.final_name, transfer.current_image())
        if status != EXIT_OK:
            what = stop_words(status - 128)
            saved = f"; saved {quoted(self.outputs.final_path)}" if final_saved else ""
            self.err.write(f"\n{PROG}: {what} after {done} of {transfer.total_iterations} iterations{saved}\n")
        elif final_saved:
            self.out.write(summary_line(done, time.monotonic() - self.began, self.last, self.outputs.final_path))
        return EXIT_SAVE_FAILED if self.saver.failed and status == EXIT_OK else status


def summary_line(iterations, seconds, progress, saved):
    """The last line of a finished run: ``iterations`` in ``seconds``, the costs by term of the last iteration
    (``progress``, a ``Progress``; None leaves them out) and their total, and the ``saved`` path."""
    costs = ""
    if progress is not None:
        terms = [name for name in progress.costs if name != "total"] + ["total"]
        costs = "; last costs: " + ", ".join(f"{name} {float(progress.costs[name]):.6g}" for name in terms)
    return f"done: {iterations} iterations in {seconds:.1f} s{costs}; saved {saved}\n"


def report_text(report_line, progress, config):
    """``report_line`` (a preset's) filled in for ``progress`` (a ``Progress``) of a run with ``config``: ``{i}``,
    ``{total}``, ``{content}``, ``{style}``, ``{tv}`` (the terms' costs) and ``{content_loss}``, ``{style_loss}``,
    ``{tv_loss}`` (times their weights, as CS231n's functions return them). Any other term follows on a line of
    its own, ``<name> cost = <value>``, so the course's lines stay exactly as the course prints them.
    """
    fields = {name: progress.costs.get(name, 0.0) for name in ("total", *_COURSE_TERMS)}
    weights = {"content": config.alpha, "style": config.beta, "tv": config.tv_weight}
    text = report_line.format(
        i=progress.iteration, **fields, **{f"{name}_loss": weights[name] * fields[name] for name in _COURSE_TERMS}
    )
    others = [name for name in progress.costs if name != "total" and name not in _COURSE_TERMS]
    return text + "".join(f"{name} cost = {progress.costs[name]:g}\n" for name in others)


#: The terms the presets' report lines name (``{content}``, ``{content_loss}``, ...).
_COURSE_TERMS = ("content", "style", "tv")
