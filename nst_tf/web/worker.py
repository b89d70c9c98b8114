"""The runs and the one thread that runs them: ``Run`` (one run's inputs, state, costs, latest picture and result)
and ``RunQueue`` (runs wait in order, a limited number at once, and run one at a time, since the machine has what
it has). A run is the library's: the preset's network (``jobs.build``, built once per weights file and kept), its
objective and ``StyleTransfer``'s reports (the picture and costs) and ticks (between traced calls, about every
second, where a stop is honoured); the result is saved with ``save_image``'s atomic write in the run's private
folder, removed with the run.
"""

import collections
import contextlib
import dataclasses
import io
import shutil
import threading
import traceback

from ..ground.errors import NSTError

#: Finished runs kept (with their results) before the oldest are removed, folders and all.
KEEP_FINISHED = 12
#: States a run ends in.
FINISHED = ("done", "stopped", "failed")


@dataclasses.dataclass(eq=False)
class Run:
    """One run: ``number`` (from 1), its ``settings`` (``RunSettings``), private ``folder``, prepared ``content``
    and ``styles`` (normalized) and ``weights`` file; then its ``state`` (queued, starting, running, stopping,
    done, stopped, failed), ``iteration``, ``costs`` ([iteration, total cost] of each report), ``message``,
    the latest picture as PNG bytes (``preview``, changed ``version`` times) and the ``result`` file."""

    number: int
    settings: object
    folder: str
    content: object
    styles: list
    weights: str
    state: str = "queued"
    iteration: int = 0
    costs: list = dataclasses.field(default_factory=list)
    message: str = ""
    preview: bytes = None
    version: int = 0
    result: str = None
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def public(self):
        """What the page is told of the run (JSON)."""
        height, width = self.content.shape[1:3]
        return {
            "number": self.number,
            "state": self.state,
            "summary": f"{self.settings.summary}, {width}x{height}, {len(self.styles)} style image"
            + ("s" if len(self.styles) > 1 else ""),
            "iteration": self.iteration,
            "iterations": self.settings.config.epochs,
            "costs": self.costs,
            "message": self.message,
            "version": self.version,
            "result": self.result is not None,
        }


def png_bytes(pixels):
    """8-bit RGB ``pixels`` as PNG bytes (quick compression: a preview)."""
    import PIL.Image

    buffer = io.BytesIO()
    PIL.Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class RunQueue:
    """Runs in order, one at a time, in one worker thread. ``notify()`` is called (from any thread) after every
    change the page should see; ``err`` gets the server's own lines (an unexpected error's traceback)."""

    def __init__(self, limits, notify, err):
        self.limits, self.notify, self.err = limits, notify, err
        self.runs = collections.OrderedDict()  # number -> Run
        self.waiting = collections.deque()
        self.closing = threading.Event()
        self._lock = threading.Condition()
        self._models = {}
        self._numbers = 0
        self._thread = threading.Thread(target=self._work, name="nst_tf-web-worker", daemon=True)
        self._thread.start()

    def next_number(self):
        with self._lock:
            self._numbers += 1
            return self._numbers

    def check_room(self):
        """``UploadError`` 429 when ``limits.queue`` runs are waiting already (before the upload is read)."""
        from .uploads import UploadError

        with self._lock:
            if len(self.waiting) >= self.limits.queue:
                raise UploadError(
                    f"the queue is full ({self.limits.queue} runs waiting); wait for one to finish or stop one", 429
                )

    def submit(self, run):
        """Queues ``run``; ``UploadError`` 429 when the queue is full (the run's folder is then the caller's)."""
        with self._lock:
            self.check_room()
            self.runs[run.number] = run
            self.waiting.append(run)
            self._forget_old()
            self._lock.notify_all()
        self.notify()

    def _forget_old(self):
        finished = [run for run in self.runs.values() if run.state in FINISHED]
        for run in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.runs[run.number]
            shutil.rmtree(run.folder, ignore_errors=True)

    def stop(self, number):
        """Stops run ``number``: a waiting one is taken off the queue, a running one stops at its next tick and
        keeps its latest picture as its result. False for no such run."""
        with self._lock:
            run = self.runs.get(number)
            if run is None:
                return False
            run.stop.set()
            if run in self.waiting:
                self.waiting.remove(run)
                run.state, run.message = "stopped", "stopped before it started"
            elif run.state in ("starting", "running"):
                run.state = "stopping"
        self.notify()
        return True

    def close(self, timeout):
        """Stops the running run and the worker; waits up to ``timeout`` seconds. Returns whether it ended."""
        self.closing.set()
        with self._lock:
            for run in self.runs.values():
                run.stop.set()
            self.waiting.clear()
            self._lock.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _work(self):
        while True:
            with self._lock:
                while not self.waiting and not self.closing.is_set():
                    self._lock.wait()
                if self.closing.is_set():
                    return
                run = self.waiting.popleft()
                run.state = "starting"
            self.notify()
            self._run(run)
            self.notify()

    def _run(self, run):
        try:
            self._optimize(run)
        except NSTError as error:
            run.state, run.message = "failed", str(error)
        except Exception as error:  # noqa: BLE001 - the page gets one line; the server's console the details
            run.state, run.message = "failed", f"internal error ({type(error).__name__}); see the server's output"
            self.err.write(f"nst_tf.web: run {run.number} failed:\n{traceback.format_exc()}")
            self.err.flush()

    def _model(self, config, preset, weights):
        """The network for ``preset``'s weights, built on first use and kept (TensorFlow imported then)."""
        from ..app.jobs.build import build_model
        from ..plan.weights.reader_registry import read_network_weights
        from ..tensors.quiet import import_tensorflow_quietly

        tf = import_tensorflow_quietly(self.err)
        key = (config.network, weights, preset.pooling, config.precision)
        if key not in self._models:
            self._models[key] = build_model(config, read_network_weights(config.network, weights), preset.pooling)
        return tf, self._models[key]

    def _optimize(self, run):
        from ..app.jobs.build import contain_determinism, objective_factory
        from ..runs.presets import PRESETS

        config = run.settings.config
        tf, model = self._model(config, PRESETS[run.settings.preset], run.weights)
        shape = tuple(run.content.shape[1:3])
        objective = objective_factory({shape: None}, self.err)(model, run.content, run.styles, config, shape)
        from ..loop.optimize import StyleTransfer

        with contain_determinism(tf, config.seed):
            transfer = StyleTransfer(objective, config)
            image, ended = self._follow(run, transfer)
        if self.closing.is_set() or image is None:
            run.state, run.message = "stopped", "stopped before its first picture"
            return
        self._save(run, image, ended)

    def _follow(self, run, transfer):
        """Follows ``transfer``'s reports and ticks until its end or a stop; returns the latest image and how the
        run ended ("done" or "stopped")."""
        from ..loop.progress import Progress

        image = None
        if run.stop.is_set():
            return image, "stopped"
        for item in transfer.run(ticks=True):
            if run.stop.is_set():
                run.iteration = transfer.iteration
                return transfer.current_image(), "stopped"
            if run.state == "starting":
                run.state = "running"
            if isinstance(item, Progress):
                image = item.image
                run.iteration = item.iteration + 1
                run.costs.append([item.iteration, float(item.total_cost)])
                self._show(run, image)
            else:
                run.iteration = item.iterations
                self.notify()
        return image, "done"

    def _show(self, run, image):
        from ..tensors.images import deprocess_image

        run.preview = png_bytes(deprocess_image(image, run.settings.config.normalization))
        run.version += 1
        self.notify()

    def _save(self, run, image, ended):
        """Saves the run's result atomically in its folder (``save_image``); the picture shown becomes it."""
        import os

        from ..tensors.images import save_image

        path = os.path.join(run.folder, "result.png")
        save_image(path, image, run.settings.config.normalization, through_links=False)
        self._show(run, image)
        run.result = path
        if ended == "stopped":
            run.message = f"stopped at iteration {run.iteration}; the result is the latest picture"
        run.state = ended

    def remove_all(self):
        """Removes every run's folder (the server is stopping)."""
        with self._lock:
            for run in self.runs.values():
                with contextlib.suppress(OSError):
                    shutil.rmtree(run.folder)
