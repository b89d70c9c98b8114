"""Cost terms beyond the config's, by name: ``TERMS``, which every objective ``make_style_cost`` builds includes.

The course's terms (content, style, total variation) come from the config. A new term is a class
with a ``name`` (how reports, the manifest and the Ray engine's records name its value), a
``weight``, ``layers = ()`` and ``image_cost(image) -> float32 scalar`` (see ``terms.py``), plus
one registration here: ``TERMS[name] = make``, where ``make(config, size)`` returns the term for a
run of ``config`` at ``size`` (height, width), or None to leave it out of that run. The command's
jobs, the library's ``make_style_cost`` and the tiled objective then sum it, differentiate it, and
print and record its value with no other edit.
"""

#: Term name -> ``make(config, size)`` returning the term, or None where it does not apply.
TERMS = {}


def registered_terms(config, size):
    """The registered terms that apply to a run of ``config`` at ``size`` (height, width), in registration order."""
    made = (make(config, tuple(size)) for make in TERMS.values())
    return [term for term in made if term is not None]
