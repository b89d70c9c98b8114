"""The kinds of job the command runs, by registration: ``JOB_KINDS``.

A kind of job is a module (or two: its setup and its run) with three functions, and a line here:

* ``wants(request) -> bool``: whether a ``request.CommandRequest`` asks for this kind (asked in the
  order of ``JOB_KINDS``; the first that wants it takes it);
* ``prepare(request) -> job``: everything the user gave checked, nothing created and TensorFlow not
  loaded; a one-line ``NSTError`` for anything wrong;
* ``run(job, out, err, stop) -> status``: starts with ``build.start_up`` (TensorFlow, signals
  deferred, the network, the objective factory), runs, saves, and returns the exit status.
"""

import dataclasses

from . import many_setup, single, video_setup
from .many_job import run_many
from .video_job import run_video


@dataclasses.dataclass(frozen=True)
class JobKind:
    """One kind of job: its ``name`` and its ``wants``, ``prepare`` and ``run`` (see the module)."""

    name: str
    wants: object
    prepare: object
    run: object


#: The kinds, in the order they are asked: several images, a video, one image.
JOB_KINDS = (
    JobKind("many", many_setup.wants, many_setup.prepare, run_many),
    JobKind("video", video_setup.wants, video_setup.prepare, run_video),
    JobKind("single", single.wants, single.prepare, single.run_single),
)


def job_kind(request):
    """The first kind in ``JOB_KINDS`` that wants ``request``."""
    return next(kind for kind in JOB_KINDS if kind.wants(request))
