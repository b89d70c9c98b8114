"""``python -m nst_tf.download``."""

from . import main

raise SystemExit(main())
