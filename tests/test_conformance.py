"""Conformance: every objective x optimizer x precision x network through the same checks, at tiny sizes.

The table (the upper-case names below) lists each choice once; every check is parametrized over
it, and ``test_the_table_lists_every_choice_nst_tf_offers`` fails when nst_tf grows an optimizer,
a network, a precision, a cost term or an objective class that the table does not list.

Checks, per cell where they make sense:

- gradient: ``value_and_gradient`` equals a ``tf.GradientTape`` gradient of ``objective(image)["total"]``,
  and the tiled objectives' costs and gradients equal the whole image's;
- the loop: ``StyleTransfer``'s steps trace once over several calls, and the cost falls;
- XLA: ``value_and_gradient`` compiled with ``jit_compile=True`` equals eager (float32);
- determinism: two runs with the same seed, under op determinism, give identical images.
"""

import inspect

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import CONFIG, NSTError, StyleCost, StyleTransfer, StyleTransferConfig, TiledStyleCost
from nst_tf.plan.config import OPTIMIZERS, PRECISIONS
from nst_tf.plan.optimizers import OPTIMIZERS as OPTIMIZER_REGISTRY
from nst_tf.tensors.images import reshape_and_normalize_image, start_image
from nst_tf.plan.networks.network_registry import NETWORKS
from nst_tf.objective import terms as terms_module
from nst_tf.plan.weights.reader_registry import read_network_weights
from nst_tf.tensors.modules import build_network
from nst_tf.objective.terms import ContentTerm, GuidedStyleTerm, StyleTerm, TemporalTerm, TotalVariationTerm
from nst_tf.plan.masks import GuidedStyle

# The table ------------------------------------------------------------------------------------


#: Objective -> how it is built from (model, content, style, config). A 48x64 image in 32-pixel
#: tiles is 4 tiles (2 x 2, the lower row 16 pixels tall): every tile has inner edges on two sides.
def _temporal(content):
    """A video's temporal term for ``content``: an earlier frame (the content brightened, moved a pixel)
    trusted on a checkerboard of pixels, so that it takes part wherever the image lies."""
    _, height, width, _ = np.shape(content)
    term = TemporalTerm((height, width), weight=TEMPORAL_WEIGHT)
    earlier = np.roll(np.asarray(content, np.float32), 1, axis=2) + 10.0
    term.assign(earlier, (np.indices((1, height, width)).sum(axis=0) % 2).astype(np.float32))
    return [term]


def _guided(style, content, config):
    """Two styles by region (``GuidedStyleTerm``): the style image on a mask falling from left to right, at the
    config's first style layer alone where it has more (scale control), and the style flipped, taken from its
    upper half, on the rest; the masks vary within every tile."""
    _, height, width, _ = np.shape(content)
    ramp = np.broadcast_to(np.linspace(1.0, 0.0, width, dtype=np.float32), (height, width))
    upper = np.zeros(np.shape(style)[1:3], np.float32)
    upper[: upper.shape[0] // 2] = 1.0
    layers = config.style_layers[:1] if len(config.style_layers) > 1 else None
    first = GuidedStyle(style, ramp, layers=layers)
    second = GuidedStyle(np.asarray(style)[:, :, ::-1], 1.0 - 0.8 * ramp, image_mask=upper)
    return [first, second]


OBJECTIVES = {
    "whole": lambda model, content, *args: StyleCost(model, content, *args, extra_terms=_temporal(content)),
    "whole-guided": lambda model, content, style, config: StyleCost(
        model, content, _guided(style, content, config), config, extra_terms=_temporal(content)
    ),
    "tiles-guided": lambda model, content, style, config: TiledStyleCost(
        model, content, _guided(style, content, config), config, tile_size=32, extra_terms=_temporal(content)
    ),
    "tiles": lambda model, content, *args: TiledStyleCost(
        model, content, *args, tile_size=32, extra_terms=_temporal(content)
    ),
    "tiles-kept": lambda model, content, *args: TiledStyleCost(
        model, content, *args, tile_size=32, keep_forward=True, extra_terms=_temporal(content)
    ),
}

#: The whole-image objective each tiled one is compared with.
WHOLE_OF = {"tiles": "whole", "tiles-kept": "whole", "tiles-guided": "whole-guided"}

#: The classes the objectives above are made of (the guard compares nst_tf's own subclasses of StyleCost).
OBJECTIVE_CLASSES = (StyleCost, TiledStyleCost)

OPTIMIZER_NAMES = ("adam", "lbfgs")

#: Precision -> pytest marks of its cells. bfloat16: oneDNN held below the CPU's own instruction set
#: (as .ci/run holds it for the numeric reruns) cannot build bfloat16 convolutions.
PRECISION_MARKS = {
    "float32": (),
    "bf16": (pytest.mark.bfloat16,),
    "fp16": (),
}

#: Precisions left out, and why.
LEFT_OUT_PRECISIONS = {
    # "auto" is not a dtype: it resolves to float32 or bf16 (precision.resolve), both in the table,
    # and which one depends on the machine, so a cell for it would repeat one of theirs.
    "auto": "resolves to float32 or bf16, both covered",
}

#: Relative error allowed between two gradients (or costs) of one precision computed two ways.
#: float32 differs only by summation order (measured 2e-7). bf16 and fp16 convolutions round
#: differently for other spatial sizes, so tiles differ from the whole image in the same precision
#: by about their rounding (measured 4e-3 and 5e-4, where bf16 differs from float32 by 1.2e-1 and
#: fp16 by 3.7e-2: so each precision is compared with itself).
TOLERANCES = {"float32": 1e-4, "bf16": 2e-2, "fp16": 5e-3}

#: Network -> (the conftest fixture giving its small synthetic weights file, the shallow
#: (content layer, style layers) that the loop and tiled XLA checks use: traces and compiles are the
#: slow part of those, they grow with the layers, and what they check does not depend on depth).
NETWORK_TABLE = {
    "vgg19": ("new_weights_file", ("conv1_2", (("conv1_1", 1.0),))),
    "squeezenet": ("squeezenet_weights_file", ("fire2", (("relu_conv1", 1.0),))),
}

#: Networks whose default layer weights do not suit the table's cost weights (WEIGHTS): SqueezeNet's are
#: CS231n's, made for Gram matrices divided by H W C (20000 at relu_conv1, where the course's normalizer
#: already divides by 4 n_C^2 (n_H n_W)^2); at beta 40 their gradients overflow float16. Equal weights.
DEEP_LAYERS = {"squeezenet": ("fire2", tuple((name, 0.25) for name in ("relu_conv1", "fire3", "fire4", "fire5")))}

#: The cost terms every objective sums; the config below switches each of them on.
TERMS = (ContentTerm, StyleTerm, TotalVariationTerm, TemporalTerm)
#: The terms of the guided objectives: the style by region in the style's place.
GUIDED_TERMS = (ContentTerm, GuidedStyleTerm, TotalVariationTerm, TemporalTerm)

#: Weights that give each term a comparable share of J on the course's start image (at the course's
#: alpha, content would be about 2e-5 of J, and a wrong content gradient would hide in the tolerance).
WEIGHTS = {"alpha": 1e5, "beta": 40.0, "tv_weight": 1.0}
TEMPORAL_WEIGHT = 1e4


def _precisions():
    return [pytest.param(name, marks=marks, id=name) for name, marks in PRECISION_MARKS.items()]


def _numeric_precisions():
    """As _precisions, with the float32 cells marked numeric (their tolerance is float32 rounding)."""
    return [
        pytest.param(name, marks=(*marks, pytest.mark.numeric) if name == "float32" else marks, id=name)
        for name, marks in PRECISION_MARKS.items()
    ]


# Fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(NETWORK_TABLE))
def network(request):
    """(name, float32 model) for each network, on its small synthetic weights."""
    name = request.param
    description = NETWORKS[name]
    path = request.getfixturevalue(NETWORK_TABLE[name][0])
    return name, build_network(description, read_network_weights(description, path))


@pytest.fixture
def network_images(network, images):
    """The content and style images normalized as the network is fed (the shared ones are "means")."""
    description = NETWORKS[network[0]]
    pixels = [image + CONFIG.MEANS for image in images]
    return tuple(
        reshape_and_normalize_image(np.clip(p[0], 0, 255), description.normalizations[0]).astype(np.float32)
        for p in pixels
    )


@pytest.fixture
def op_determinism():
    """Op determinism on for the test, then as it was (as a seeded command run leaves it)."""
    from tensorflow.python.framework import config as tf_config

    was = tf_config.is_op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    yield
    if not was:
        tf_config.disable_op_determinism()


def _config(network_name, precision, shallow=False, **extra):
    description = NETWORKS[network_name]
    content_layer, style_layers = (
        NETWORK_TABLE[network_name][1]
        if shallow
        else DEEP_LAYERS.get(network_name, (description.content_layer, description.style_layers))
    )
    return StyleTransferConfig(
        network=network_name,
        normalization=description.normalizations[0],
        content_layer=content_layer,
        style_layers=style_layers,
        precision=precision,
        seed=1,
        lbfgs_history=5,
        **WEIGHTS,
        **extra,
    )


def _refused_in_tiles(network_name, objective_name, model, images, config):
    """Whether the cell is a tiled objective of a network that cannot be tiled; it then checks the refusal."""
    if objective_name not in WHOLE_OF or NETWORKS[network_name].tileable:
        return False
    with pytest.raises(NSTError, match=f"^{NETWORKS[network_name].title} cannot be computed in tiles"):
        OBJECTIVES[objective_name](model, *images, config)
    return True


def _relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _traced_calls(objective):
    """Counts how often ``objective.value_and_gradient``'s Python body runs: once per trace of a loop.

    The public way to see retracing: ``StyleTransfer`` offers no tracing count, and a
    ``tf.function`` runs its Python code only while tracing, so the count is the number of
    traces (``_run_steps.experimental_get_tracing_count()`` would say the same from a private name).
    """
    calls = []
    value_and_gradient = objective.value_and_gradient

    def counted(image):
        calls.append(image)
        return value_and_gradient(image)

    objective.value_and_gradient = counted
    return calls


# 1. Gradients ---------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", _numeric_precisions())
@pytest.mark.parametrize("objective_name", list(OBJECTIVES))
def test_value_and_gradient_is_the_tape_gradient_of_the_cost_and_tiles_match_the_whole_image(
    network, network_images, strict_float32, objective_name, precision
):
    network_name, model = network
    config = _config(network_name, precision)
    if _refused_in_tiles(network_name, objective_name, model, network_images, config):
        return
    objective = OBJECTIVES[objective_name](model, *network_images, config)
    image = tf.constant(start_image(network_images[0], config))

    assert [type(term) for term in objective.terms] == list(GUIDED_TERMS if "guided" in objective_name else TERMS)
    costs, gradient = objective.value_and_gradient(image)
    values = {name: float(c) for name, c in costs.items()}
    # The objective reports each term's value under the term's name, the total first.
    assert list(values) == ["total", *(term.name for term in objective.terms)]
    assert all(values[term.name] > 0 for term in objective.terms), values  # every term takes part
    weighted = sum(term.weight * values[term.name] for term in objective.terms)
    assert values["total"] == pytest.approx(weighted, rel=1e-5)

    with tf.GradientTape() as tape:
        tape.watch(image)
        taped_costs = objective(image)
    taped = tape.gradient(taped_costs["total"], image)
    tolerance = TOLERANCES[precision]
    assert {name: float(c) for name, c in taped_costs.items()} == pytest.approx(values, rel=tolerance)
    assert _relative_error(gradient, taped) < tolerance

    if objective_name in WHOLE_OF:
        assert len(objective.tiles) == 4
        whole = OBJECTIVES[WHOLE_OF[objective_name]](model, *network_images, config)
        whole_costs, whole_gradient = whole.value_and_gradient(image)
        assert values == pytest.approx({name: float(c) for name, c in whole_costs.items()}, rel=tolerance)
        assert _relative_error(gradient, whole_gradient) < tolerance


# 2 and 4. The traced loop, and determinism ------------------------------------------------------


# One test for both checks: determinism needs two runs, and a run's trace is the slow part of a
# cell, so the first run's trace also serves the tracing and cost checks.
@pytest.mark.parametrize("precision", _precisions())
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
@pytest.mark.parametrize("objective_name", list(OBJECTIVES))
def test_a_seeded_run_traces_once_lowers_the_cost_and_repeats_exactly(
    network, network_images, op_determinism, objective_name, optimizer, precision
):
    network_name, model = network
    config = _config(network_name, precision, shallow=True, optimizer=optimizer)
    if _refused_in_tiles(network_name, objective_name, model, network_images, config):
        return

    # 32x64: two tiles side by side (without keep_forward, the first runs again in pass 2 and the
    # last is kept from pass 1), half the trace of the gradient check's 2 x 2 tiles.
    content, style = (image[:, :32] for image in network_images)

    def run(totals=None):
        objective = OBJECTIVES[objective_name](model, content, style, config)
        traces = _traced_calls(objective)
        transfer = StyleTransfer(objective, config)
        for n in (1, 2, 3):
            if totals is not None:
                totals.append(transfer.costs()["total"])
            transfer.step(n)
        assert transfer.iteration == 6
        assert len(traces) == 1
        if totals is not None:
            totals.append(transfer.costs()["total"])
        assert objective_name not in WHOLE_OF or len(objective.tiles) == 2
        return transfer.image.numpy()

    totals = []
    first = run(totals)
    assert all(np.isfinite(totals)), totals
    assert totals[-1] < 0.9 * totals[0], totals
    assert max(totals[1:]) < totals[0], totals
    np.testing.assert_array_equal(run(), first)


# 3. XLA ---------------------------------------------------------------------------------------


# One compile per objective kind (each takes seconds on a CPU); not marked numeric: XLA's fused
# arithmetic is what is compared, and the numeric reruns would compile it three times more.
@pytest.mark.parametrize("objective_name", ["whole", "tiles", "tiles-guided"])
def test_value_and_gradient_compiled_with_xla_equals_eager(network, network_images, strict_float32, objective_name):
    network_name, model = network
    config = _config(network_name, "float32", shallow=objective_name in WHOLE_OF)
    if _refused_in_tiles(network_name, objective_name, model, network_images, config):
        return
    objective = OBJECTIVES[objective_name](model, *network_images, config)
    image = tf.constant(start_image(network_images[0], config))
    costs, gradient = objective.value_and_gradient(image)
    compiled_costs, compiled_gradient = tf.function(objective.value_and_gradient, jit_compile=True)(image)
    compiled = {name: float(c) for name, c in compiled_costs.items()}
    assert compiled == pytest.approx({name: float(c) for name, c in costs.items()}, rel=1e-4)
    assert _relative_error(compiled_gradient, gradient) < 1e-4


# 5. The table covers every choice -------------------------------------------------------------


def _defined_terms():
    """The classes of nst_tf/objective/terms.py that are cost terms (they have sums/cost or image_cost)."""
    return {
        cls
        for _, cls in inspect.getmembers(terms_module, inspect.isclass)
        if cls.__module__ == terms_module.__name__
        and any(callable(getattr(cls, method, None)) for method in ("sums", "cost", "image_cost"))
    }


def _objective_classes():
    """StyleCost and nst_tf's own subclasses of it (tests may subclass it too)."""
    found, pending = set(), [StyleCost]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith("nst_tf.") and cls not in found:
            found.add(cls)
            pending.extend(cls.__subclasses__())
    return found


def test_the_table_lists_every_choice_nst_tf_offers():
    assert OPTIMIZER_NAMES == OPTIMIZERS == tuple(OPTIMIZER_REGISTRY)
    assert tuple(NETWORK_TABLE) == tuple(NETWORKS)
    covered, left_out = set(PRECISION_MARKS), set(LEFT_OUT_PRECISIONS)
    assert not covered & left_out
    assert covered | left_out == set(PRECISIONS)
    assert set(TOLERANCES) == covered
    assert _defined_terms() == set(TERMS) | set(GUIDED_TERMS)
    assert _objective_classes() == set(OBJECTIVE_CLASSES)
