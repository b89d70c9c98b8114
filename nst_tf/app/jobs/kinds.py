"""The kinds of job the command runs, by registration: ``JOB_KINDS``.

A kind has ``wants(request) -> bool`` (asked in ``JOB_KINDS``' order; the first that wants a
``request.CommandRequest`` takes it), ``prepare(request) -> job`` (everything checked, nothing created,
TensorFlow not loaded; a one-line ``NSTError`` for anything wrong) and ``run(job, out, err, stop) -> status``
(starting with ``build.start_up``, or ``fast_job.start_fast`` for a fast model's).
"""

import dataclasses

from . import fast_setup, many_setup, single, video_setup
from .fast_job import run_fast_many, run_fast_single, run_fast_video
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


#: The kinds of a ``--fast_model`` command line (a ``fast_setup.FastRequest``), asked in the same order.
FAST_JOB_KINDS = (
    JobKind("fast_many", many_setup.wants, fast_setup.prepare_many, run_fast_many),
    JobKind("fast_video", video_setup.wants, fast_setup.prepare_video, run_fast_video),
    JobKind("fast_single", single.wants, fast_setup.prepare_single, run_fast_single),
)


def fast_job_kind(request):
    """The first kind in ``FAST_JOB_KINDS`` that wants ``request``."""
    return next(kind for kind in FAST_JOB_KINDS if kind.wants(request))
