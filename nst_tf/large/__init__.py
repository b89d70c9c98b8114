"""Large images: the options (``options.py``), tile geometry and the ``TilePlan`` (``tiles.py``), memory
estimates and planning (``memory.py``), and coarse to fine (``multiscale.py``).

``options.py``, ``tiles.py`` and ``memory.py`` need no TensorFlow, so that the
command can check large-image options and plan tiles before importing it.
"""
