"""``python -m nst_tf`` and the ``nst-tf`` command.

The first thing it does is make a signal end it with one line and status
128 + the signal's number (``nst_tf.app.signals.stop_at_once``), until the
command installs its own handlers once its modules are loaded; nothing is
created before then. Only the interpreter's own start-up, before this file
runs (tens of milliseconds), is outside that.

It also hands the command the downloader (``--download``), a layer above the
command's own.
"""


def fetch_weights(choice, destination):
    """``nst_tf.download``'s ``fetch_weights``, loaded when ``--download`` needs it (urllib and ssl load slowly)."""
    from .download.command import fetch_weights as fetch

    return fetch(choice, destination)


def main(argv=None):
    """The command on ``argv`` (default: ``sys.argv[1:]``), ``--download`` included; returns its exit status."""
    from .app.cli import main as command

    return command(argv, fetch_weights=fetch_weights)


def run():
    """Runs the command and ends the process with its exit status.

    The process ends by ``nst_tf.app.signals.end_process`` once the last
    line is written: the interpreter's and TensorFlow's teardown would take
    seconds more, during which a signal could still kill it.
    """
    from .app.signals import end_process, stop_at_once, use_own_standard_streams, use_private_temporary_folder

    stop_at_once("nst-tf: {what}")
    use_own_standard_streams()
    use_private_temporary_folder()
    end_process(main())


if __name__ == "__main__":
    run()
