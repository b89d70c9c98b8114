"""Video: frames stylized in turn, each held close to the previous ones by optical flow (Ruder et al. 2016).

``flow.py``: optical flow between frames (OpenCV) and the consistency
weights; ``warp.py``: bilinear warping in TensorFlow; the temporal cost term
is ``objective.terms.TemporalTerm``.
"""
