"""The objective of a run: the cost terms (``terms.py``), their sum over the whole image (``whole.py``:
``StyleCost``) and the same sum, with its gradient, in tiles (``tiled.py``: ``TiledStyleCost``).
"""
