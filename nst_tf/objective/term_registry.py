"""Cost terms beyond the config's, by name: ``TERMS``, which every objective ``make_style_cost`` builds includes.

A new term is a class with a ``name`` (how reports and records name its value), a ``weight``,
``layers = ()`` and ``image_cost(image) -> float32 scalar`` (``terms.py``), plus ``TERMS[name] = make``
here, ``make(config, size)`` giving the term for a run at ``size`` (height, width) or None. The jobs,
``make_style_cost`` and the tiled objective then sum, differentiate, print and record it.
"""

#: Term name -> ``make(config, size)`` returning the term, or None where it does not apply.
TERMS = {}


def registered_terms(config, size):
    """The registered terms that apply to a run of ``config`` at ``size`` (height, width), in registration order."""
    made = (make(config, tuple(size)) for make in TERMS.values())
    return [term for term in made if term is not None]
