"""The seams: a network is a description, a reader and a module, each registered; a cost term is a class.

A toy network and a toy term are defined here, as a user's own files would
define them, and go through the same code as VGG-19 and the course's terms:
config validation, the memory model, whole and tiled objectives (tiled ==
whole for values and gradients, with no gradient written for the term).
"""

import numpy as np
import pytest
import tensorflow as tf

import nst_tf.plan.networks.network_registry
from nst_tf import NSTError, StyleCost, StyleTransfer, StyleTransferConfig, TiledStyleCost
from nst_tf.plan.memory import MemoryModel
from nst_tf.plan.tiles import TilePlan
from nst_tf.plan.networks.network_registry import Network, get_network
from nst_tf.plan.weights.reader_registry import READERS, read_network_weights
from nst_tf.tensors.modules import MODULES, build_network

TOY_LAYERS = ("c1", "p1", "c2", "p2", "c3")
TOY = Network(
    name="toynet",
    title="ToyNet",
    layers=TOY_LAYERS,
    kinds=("conv", "pool", "conv", "pool", "conv"),
    poolings=("avg",),
    normalizations=("means",),
    mean_pixel=(123.68, 116.779, 103.939),
    content_layer="c2",
    style_layers=(("c1", 0.5), ("c3", 0.5)),
    min_image_size=4,
    weights_bytes=1000,
    pixel_bytes=100,
    forward_pixel_bytes=60,
    kept_pixel_bytes=20,
)
WIDTHS = {"c1": (3, 4), "c2": (4, 6), "c3": (6, 8)}


def read_toy_weights(path):
    rng = np.random.default_rng(int(path))
    return {
        name: (rng.normal(0, 0.3, (3, 3, cin, cout)).astype(np.float32), rng.normal(0, 0.1, cout).astype(np.float32))
        for name, (cin, cout) in WIDTHS.items()
    }


class ToyNet(tf.Module):
    """3x3 SAME convolutions with ReLU and 2x2 SAME average pooling: the geometry ``Network`` assumes."""

    network = TOY
    dtype = tf.float32

    def __init__(self, weights, dtype=tf.float32, pooling="avg"):
        super().__init__(name="toynet")
        self.pooling = pooling
        self._weights = {name: (tf.constant(k), tf.constant(b)) for name, (k, b) in weights.items()}

    def __call__(self, image, layers=None, lean_gradient=False):
        wanted = TOY_LAYERS if layers is None else tuple(layers)
        x, outputs = tf.convert_to_tensor(image, tf.float32), {}
        for name in TOY_LAYERS[: 1 + max(TOY_LAYERS.index(layer) for layer in wanted)]:
            if name.startswith("c"):
                kernel, bias = self._weights[name]
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
            else:
                x = tf.nn.avg_pool2d(x, 2, 2, "SAME")
            outputs[name] = x
        return {name: outputs[name] for name in wanted}


@pytest.fixture
def toynet(monkeypatch):
    monkeypatch.setitem(nst_tf.plan.networks.network_registry.NETWORKS, "toynet", TOY)
    monkeypatch.setitem(READERS, "toynet", read_toy_weights)
    monkeypatch.setitem(MODULES, "toynet", ToyNet)
    return build_network("toynet", read_network_weights("toynet", "7"))


def _toy_config(**extra):
    return StyleTransferConfig(
        network="toynet", content_layer="c2", style_layers=(("c1", 0.5), ("c3", 0.5)), tv_weight=0.01, **extra
    )


def _toy_images(rng, height=40, width=52):
    return [rng.normal(0, 1, (1, height, width, 3)).astype(np.float32) for _ in range(3)]


def _relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


# A new network ----------------------------------------------------------------------------------


def test_a_registered_network_validates_the_configs_layer_names(toynet):
    assert _toy_config().network == "toynet"
    with pytest.raises(NSTError, match="content_layer 'conv4_2' is not a ToyNet layer; valid names: c1, p1"):
        StyleTransferConfig(network="toynet", style_layers=(("c1", 1.0),))


def test_a_network_says_which_normalizations_it_takes(toynet):
    with pytest.raises(NSTError, match="normalization 'unit' is not one ToyNet takes; use one of means"):
        _toy_config(normalization="unit")


def test_an_unknown_network_is_refused_naming_the_known_ones():
    with pytest.raises(NSTError, match="network must be one of vgg19, squeezenet; got 'resnet'"):
        StyleTransferConfig(network="resnet")
    with pytest.raises(NSTError, match="network must be one of vgg19, squeezenet"):
        get_network(None)


def test_the_networks_geometry_is_what_tiles_and_memory_estimates_use(toynet):
    assert (TOY.stride("c3"), TOY.reach("c3"), TOY.margin(["c3", "c1"]), TOY.alignment(["c2"])) == (4, 2, 8, 2)
    assert TOY.length(41, "c3", "avg") == 11
    plan = TilePlan.of(["c2", "c3"], 16, network="toynet")
    assert (plan.margin, plan.align, len(plan.grid(40, 52))) == (8, 4, 12)
    whole = MemoryModel("toynet").whole(40, 52)
    # The network's figure, with the estimate's tenth of margin.
    assert whole - MemoryModel("toynet").whole(40, 51) == pytest.approx(40 * TOY.pixel_bytes * 1.1, abs=1)


@pytest.mark.numeric
@pytest.mark.parametrize("keep_forward", [False, True])
def test_a_new_network_runs_in_tiles_with_the_whole_images_costs_and_gradient(toynet, rng, keep_forward):
    content, style, image = _toy_images(rng)
    config = _toy_config()
    whole = StyleCost(toynet, content, style, config)
    tiled = TiledStyleCost(toynet, content, style, config, tile_size=16, keep_forward=keep_forward)
    assert len(tiled.tiles) == 12
    image = tf.constant(image)
    (costs, gradient), (tiled_costs, tiled_gradient) = (c.value_and_gradient(image) for c in (whole, tiled))
    assert list(tiled_costs) == list(costs)
    np.testing.assert_allclose(
        [float(tiled_costs[name]) for name in costs], [float(c) for c in costs.values()], rtol=1e-5
    )
    assert _relative_error(tiled_gradient, gradient) < 1e-5


def test_a_new_network_is_optimized_by_the_same_loop(toynet, rng):
    content, style, _ = _toy_images(rng)
    transfer = StyleTransfer(StyleCost(toynet, content, style, _toy_config(epochs=6, print_every=5, seed=2)))
    reports = list(transfer.run())
    assert [r.iteration for r in reports] == [0, 5]
    assert reports[-1].total_cost < reports[0].total_cost


# A new cost term --------------------------------------------------------------------------------


class MeanActivationTerm:
    """``(mean of a layer's activation - goal)**2``: a term nonlinear in its sums, with no gradient written."""

    name = "mean"

    def __init__(self, layer, goal, weight):
        self.layer, self.layers, self.goal, self.weight = layer, (layer,), goal, weight

    def sums(self, activations, window):
        if self.layer not in activations:
            return {}
        return {"total": tf.reduce_sum(activations[self.layer])}

    def cost(self, sums, shapes):
        n_H, n_W = shapes.layer(self.layer)
        return tf.square(sums["total"] / float(n_H * n_W) - self.goal)


def _with_mean_term(objective_class):
    class WithMean(objective_class):
        def _make_terms(self):
            return super()._make_terms() + [MeanActivationTerm("conv2_1", 3.0, 50.0)]

    return WithMean


def test_a_new_term_adds_its_weighted_cost_to_J(model, images, rng):
    content, style = images
    image = tf.constant(rng.normal(0, 40, content.shape).astype(np.float32))
    plain = StyleCost(model, content, style)
    extended = _with_mean_term(StyleCost)(model, content, style)
    activation = model(image, layers=["conv2_1"])["conv2_1"].numpy().astype(np.float64)
    n_H, n_W = activation.shape[1:3]
    expected = 50.0 * (activation.sum() / (n_H * n_W) - 3.0) ** 2
    J_plain, J = float(plain(image)["total"]), float(extended(image)["total"])
    assert J - J_plain == pytest.approx(expected, rel=1e-4)
    assert [term.name for term in extended.terms] == ["content", "style", "mean"]


@pytest.mark.numeric
@pytest.mark.parametrize("keep_forward", [False, True])
def test_a_new_term_is_exact_in_tiles_without_a_written_gradient(model, images, rng, keep_forward):
    content, style = images
    image = tf.constant(rng.normal(0, 40, content.shape).astype(np.float32))
    whole = _with_mean_term(StyleCost)(model, content, style)
    tiled = _with_mean_term(TiledStyleCost)(model, content, style, tile_size=32, keep_forward=keep_forward)
    assert len(tiled.tiles) == 4
    (costs, gradient), (tiled_costs, tiled_gradient) = (c.value_and_gradient(image) for c in (whole, tiled))
    assert list(tiled_costs) == list(costs)
    np.testing.assert_allclose(
        [float(tiled_costs[name]) for name in costs], [float(c) for c in costs.values()], rtol=1e-5
    )
    assert _relative_error(tiled_gradient, gradient) < 1e-5
    # The term moves the gradient: without it the gradient is another one.
    without = StyleCost(model, content, style).value_and_gradient(image)[1]
    assert _relative_error(without, gradient) > 1e-3


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda n: n.deepest(None), "layers must be a list of layer names; got None"),
        (lambda n: n.margin("conv1_1"), "layers must be a list of layer names"),
        (lambda n: n.deepest([]), "layers: give at least one layer"),
        (lambda n: n.stride("fc6"), "layer 'fc6' is not a VGG-19 layer"),
        (lambda n: n.length("10", "conv1_1", "avg"), "length must be a whole number of pixels; got '10'"),
        (lambda n: n.length(10, "conv1_1", "median"), "pooling must be one of 'avg', 'max'; got 'median'"),
        (lambda n: read_network_weights(n, None), "the weights file must be a path; got NoneType"),
        (
            lambda n: build_network(n, None),
            "weights must be the VGGWeights nst_tf.read_weights returns; got NoneType",
        ),
    ],
)
def test_a_networks_description_refuses_wrong_arguments_naming_them(call, message):
    with pytest.raises(NSTError, match=message):
        call(get_network("vgg19"))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("a", 3), {}, "height must be a positive whole number; got 'a'"),
        ((0, 3), {}, "height must be a positive whole number; got 0"),
        ((10, 10), {"max_memory": -1}, "max_memory must be a positive whole number; got -1"),
        ((10, 10), {"style": 7}, r"style must be a \(height, width\) pair; got 7"),
        ((10, 10), {"style": (0, 4)}, "style height must be a positive whole number; got 0"),
    ],
)
def test_the_memory_plan_refuses_wrong_arguments_naming_them(args, kwargs, message):
    with pytest.raises(NSTError, match=message):
        MemoryModel().plan(*args, ["conv1_1"], **kwargs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 2**40}, "epochs must be at most 2147483647"),
        ({"lbfgs_history": 2**31}, "lbfgs_history must be at most 2147483647"),
        ({"style_blend_weights": (1e308, 1e308)}, "style_blend_weights: their sum is too large to compute"),
    ],
)
def test_the_config_refuses_numbers_the_traced_loop_cannot_count(kwargs, message):
    with pytest.raises(NSTError, match=message):
        StyleTransferConfig(**kwargs)


def test_a_plan_made_for_other_layers_is_refused_rather_than_giving_other_costs(model, images):
    content, style = images
    with pytest.raises(NSTError, match="plan was made for layers conv1_1; the config also uses conv4_2"):
        TiledStyleCost(model, content, style, plan=TilePlan.of(["conv1_1"], 32))
    with pytest.raises(NSTError, match="plan must be a TilePlan; got str"):
        TiledStyleCost(model, content, style, plan="x")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.whole(-1, 5), "size height must be a positive whole number; got -1"),
        (lambda m: m.whole(96, 128, style=(1,)), r"style must be a \(height, width\) pair"),
        (lambda m: m.tiled(96, 128, None), "plan must be a TilePlan; got NoneType"),
    ],
)
def test_memory_estimates_refuse_wrong_arguments(call, message):
    with pytest.raises(NSTError, match=message):
        call(MemoryModel())


def test_a_registered_network_description_is_taken_as_its_name():
    assert StyleTransferConfig(network=get_network("vgg19")).network == "vgg19"


def test_a_model_that_gives_no_activation_for_a_layer_is_one_error(images):
    content, style = images
    with pytest.raises(NSTError, match="the model gave no activation for layer 'conv4_2'; it must return"):
        StyleCost(lambda image, layers: {}, content, style)


@pytest.mark.parametrize("objective", [StyleCost, TiledStyleCost])
def test_an_objective_called_on_an_image_of_another_size_says_so(model, images, objective):
    content, style = images
    cost = objective(model, content, style)
    other = np.zeros((1, content.shape[1] + 8, content.shape[2], 3), np.float32)
    with pytest.raises(NSTError, match=r"image has shape \(1, \d+, \d+, 3\); this \w*StyleCost is for"):
        cost(other)
    with pytest.raises(NSTError, match="the content image's"):
        cost.value_and_gradient(tf.Variable(other))
