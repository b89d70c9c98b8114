"""``python -m nst_tf.train``: signals end it with one line from its first moment, then ``train_cli.main``."""

from ..app.signals import end_process, stop_at_once, use_own_standard_streams, use_private_temporary_folder

# Loading the command's modules takes a moment; nothing is created before main().
stop_at_once("python -m nst_tf.train: {what}; nothing was saved")
use_own_standard_streams()
use_private_temporary_folder()

from ..app.train_cli import main  # noqa: E402  (after the handlers, on purpose)

end_process(main())
