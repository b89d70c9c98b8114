"""Jobs: what the command runs, built from pieces a one-image, a batch or a video job can share.

* ``statuses``: the program's name and its exit statuses.
* ``outputs``: ``Outputs``, what a run saves when and under which names, the
  output folder's checks, and ``Saver``, saving with a rescue on failure.
* ``build``: TensorFlow imported quietly, the network, op determinism for
  seeded runs and the objective factory (with its note on tiled sizes).
* ``drive``: ``drive()``, the loop that follows a run's progress, with
  the progress line, NaN and interruption handling and the final save.
* ``signals``: ``StopRequest``, SIGINT, SIGTERM and SIGHUP honoured within
  seconds at any moment, by a watcher thread where the main thread is busy.
* ``single``: ``Job``, a validated one-image command, and ``run_single()``.

Nothing here imports TensorFlow until a job runs, so that bad input is
refused quickly. The library itself never prints; these jobs write only to
the streams they are given.
"""
