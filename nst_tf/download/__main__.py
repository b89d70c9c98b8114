"""``python -m nst_tf.download``: signals end it with one line from its first moment, then ``command.main``."""

from ..app.signals import end_process, stop_at_once
from .console import PROG

# Loading the command's modules (NumPy, urllib, ssl) takes about 0.3 s; nothing is created before main().
stop_at_once(f"{PROG}: interrupted; nothing was saved")

from .command import main  # noqa: E402  (after the handlers, on purpose)

end_process(main())
