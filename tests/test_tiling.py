"""Costs and gradients in tiles (nst_tf/objective/tiled.py) and their geometry (large/tiles.py, the network's)."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import NSTError, StyleCost, StyleTransfer, StyleTransferConfig, load_vgg_model
from nst_tf.plan.tiles import TilePlan, spans, tile_grid
from nst_tf.plan.networks.network_registry import get_network
from nst_tf.plan.networks.vgg19 import GRAPH_LAYERS, VGG19_NETWORK
from nst_tf.objective.tiled import TiledStyleCost

layer_stride, edge_reach, required_margin, tile_alignment = (
    VGG19_NETWORK.stride,
    VGG19_NETWORK.reach,
    VGG19_NETWORK.margin,
    VGG19_NETWORK.alignment,
)


def layer_length(length, layer, pooling):
    return VGG19_NETWORK.length(length, layer, pooling)


# (content layer, style layers): the deepest layer used at every depth of the
# network, a content layer that is also a (twice listed) style layer, pooled
# layers as style layers, and avgpool5, whose tiles align to 32 pixels.
LAYER_CHOICES = {
    "block1": ("conv1_2", (("conv1_1", 1.0),)),
    "block2": ("conv2_2", (("avgpool1", 0.5), ("conv2_1", 0.5))),
    "block3": ("conv3_1", (("avgpool2", 0.3), ("conv3_1", 0.5), ("conv3_1", 0.2))),
    "course": ("conv4_2", None),
    "block5": ("conv5_4", (("avgpool5", 1.0), ("conv1_1", 1.0))),
}


@pytest.fixture(scope="module", params=["avg", "max"])
def pooled_model(request, new_weights_file):
    return load_vgg_model(new_weights_file, pooling=request.param)


def _config(choice, **extra):
    content_layer, style_layers = LAYER_CHOICES[choice]
    if style_layers is not None:
        extra["style_layers"] = style_layers
    return StyleTransferConfig(content_layer=content_layer, **extra)


def _images(rng, height, width):
    content = rng.normal(0, 40, (1, height, width, 3)).astype(np.float32)
    styles = [
        rng.normal(0, 40, (1, 90, 120, 3)).astype(np.float32),
        rng.normal(0, 30, (1, 64, 48, 3)).astype(np.float32),
    ]
    image = rng.normal(0, 40, (1, height, width, 3)).astype(np.float32)
    return content, styles, image


def _relative_error(a, b):
    """Largest difference relative to the largest value: a wrong margin shows up locally, near tile edges."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _compare(model, config, content, styles, image, tile_size, keep_forward=False, plan=None):
    untiled = StyleCost(model, content, styles, config)
    tiled = TiledStyleCost(model, content, styles, config, tile_size=tile_size, keep_forward=keep_forward, plan=plan)
    (costs, gradient), (tiled_costs, tiled_gradient) = (
        cost.value_and_gradient(tf.constant(image)) for cost in (untiled, tiled)
    )
    assert list(tiled_costs) == list(costs)
    cost_errors = [abs(float(tiled_costs[n]) - float(u)) / max(abs(float(u)), 1e-30) for n, u in costs.items()]
    called = [float(c) for c in tiled(tf.constant(image)).values()]
    return tiled, cost_errors, _relative_error(tiled_gradient, gradient), called


# Exactness ------------------------------------------------------------------------------------


@pytest.mark.numeric
@pytest.mark.parametrize("keep_forward", [False, True], ids=["forward-run-again", "forward-kept"])
@pytest.mark.parametrize("choice", list(LAYER_CHOICES))
@pytest.mark.parametrize(
    "shape, tile_size",
    [((96, 128), 32), ((100, 140), 48)],
    ids=["tiles-divide-the-image", "tiles-do-not-divide-the-image"],
)
def test_tiled_costs_and_gradient_equal_the_untiled_ones(
    pooled_model, rng, strict_float32, choice, shape, tile_size, keep_forward
):
    config = _config(choice, tv_weight=0.3, style_blend_weights=(0.7, 0.3))
    content, styles, image = _images(rng, *shape)
    tiled, cost_errors, gradient_error, called = _compare(
        pooled_model, config, content, styles, image, tile_size, keep_forward
    )
    assert len(tiled.tiles) >= 4
    # Sums in another order: float32 rounding (about 1e-7 measured), far
    # below what a margin one grid step short gives (1e-4 and more, next test).
    assert max(cost_errors) < 1e-5
    assert gradient_error < 1e-5
    J, J_content, J_style, J_tv = called
    assert J == pytest.approx(config.alpha * J_content + config.beta * J_style + config.tv_weight * J_tv, rel=1e-6)


@pytest.mark.numeric
@pytest.mark.parametrize("choice", ["block3", "course"])
def test_a_margin_one_grid_step_short_gives_wrong_gradients(model, rng, monkeypatch, strict_float32, choice):
    # The test above could not tell a margin that is too small if tiles never
    # cut where it matters; here one grid step less shows the damage.
    config = _config(choice)
    layers = [config.content_layer, *(name for name, _ in config.style_layers)]
    short = required_margin(layers) - tile_alignment(layers)
    # TilePlan.of refuses such a margin; the plan is made by hand.
    plan = TilePlan(VGG19_NETWORK, tuple(layers), (48, 48), short, False, "avg")
    content, styles, image = _images(rng, 100, 140)
    tiled, _, gradient_error, _ = _compare(model, config, content, styles, image, 48, plan=plan)
    assert tiled.margin == short
    assert gradient_error > 1e-4


@pytest.mark.numeric
@pytest.mark.bfloat16
def test_in_bf16_tiles_differ_from_the_whole_image_far_less_than_bf16_from_float32(model, rng):
    # bf16 convolutions round differently for other spatial sizes, so tiles
    # cannot match to float32 rounding; they stay well inside bf16's own error.
    content, styles, image = _images(rng, 100, 140)
    gradients = {}
    for precision in ("float32", "bf16"):
        config = StyleTransferConfig(precision=precision)
        costs = {
            "whole": StyleCost(model, content, styles, config),
            "tiles": TiledStyleCost(model, content, styles, config, 48),
            "tiles-kept": TiledStyleCost(model, content, styles, config, 48, keep_forward=True),
        }
        for name, cost in costs.items():
            gradients[precision, name] = cost.value_and_gradient(tf.constant(image))[1]
    bf16_error = _relative_error(gradients["bf16", "whole"], gradients["float32", "whole"])
    for name in ("tiles", "tiles-kept"):
        assert _relative_error(gradients["bf16", name], gradients["bf16", "whole"]) < 0.3 * bf16_error, name


@pytest.mark.parametrize("keep_forward", [1, None, "yes"])
def test_keep_forward_must_be_true_or_false(model, images, keep_forward):
    content, style = images
    with pytest.raises(NSTError, match=f"keep_forward must be True or False; got {keep_forward!r}"):
        TiledStyleCost(model, content, style, tile_size=16, keep_forward=keep_forward)


def test_a_margin_below_what_the_deepest_layer_needs_is_refused(model, images):
    with pytest.raises(NSTError, match="margin must be a whole number of at least 80 pixels, what conv5_1 needs"):
        TiledStyleCost(model, *images, StyleTransferConfig(), tile_size=32, margin=64)


def test_tile_size_and_margin_are_rounded_up_to_the_pooling_grid(model, images):
    tiled = TiledStyleCost(model, *images, StyleTransferConfig(), tile_size=33, margin=81)
    assert (tiled.tile_size, tiled.margin) == ((48, 48), 96)
    tiled = TiledStyleCost(model, *images, _config("block5"), tile_size=(33, 64))
    assert (tiled.tile_size, tiled.margin) == ((64, 64), 128)


# Geometry -------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["avg", "max"])
@pytest.mark.parametrize("height, width", [(37, 45), (64, 96), (100, 33)])
def test_layer_length_is_the_networks_activation_size(new_weights_file, pooling, height, width):
    model = load_vgg_model(new_weights_file, pooling=pooling)
    activations = model(np.zeros((1, height, width, 3), np.float32))
    for layer in GRAPH_LAYERS:
        assert activations[layer].shape[1:3] == (
            layer_length(height, layer, pooling),
            layer_length(width, layer, pooling),
        ), layer


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_edge_reach_counts_the_positions_an_artificial_edge_changes(new_weights_file, rng, pooling):
    # Cutting an image at a column on the conv5 pooling grid changes, at each
    # layer, exactly the last edge_reach(layer) columns before the cut.
    model = load_vgg_model(new_weights_file, pooling=pooling)
    image = rng.normal(0, 40, (1, 64, 320, 3)).astype(np.float32)
    cut = 256
    full, part = model(image), model(image[:, :, :cut])
    for layer in GRAPH_LAYERS:
        columns = cut // layer_stride(layer)
        differs = np.abs(full[layer][:, :, :columns].numpy() - part[layer].numpy()).max(axis=(0, 1, 3)) > 0
        changed = columns - int(np.argmax(differs)) if differs.any() else 0
        assert changed == edge_reach(layer), layer
        assert not differs[: columns - edge_reach(layer)].any(), layer


def test_required_margin_is_the_receptive_reach_of_the_deepest_layer_on_its_grid():
    # conv5_1: 5 positions at stride 16; conv4_2: 5 at stride 8; avgpool5: 4 at stride 32; conv1_1: 1 pixel.
    assert required_margin(["conv1_1", "conv5_1", "conv4_2"]) == 80
    assert required_margin(["conv4_2"]) == 40
    assert required_margin(["avgpool5"]) == 128
    assert required_margin(["conv1_1"]) == 1
    assert tile_alignment(["conv1_1", "conv5_1"]) == 16
    assert tile_alignment(["avgpool5"]) == 32


@pytest.mark.parametrize(
    "length, tile, margin, align", [(100, 48, 80, 16), (140, 16, 12, 4), (33, 8, 2, 1), (64, 64, 0, 32)]
)
def test_tiles_partition_the_image_and_extend_by_the_margin_on_the_grid(length, tile, margin, align):
    found = spans(length, tile, margin, align)
    assert [s.start for s in found] == list(range(0, length, tile))
    assert [s.stop for s in found] == [*range(tile, length, tile), length]
    for s in found:
        assert s.first % align == 0 and (s.last == length or s.last % align == 0)
        assert s.first == 0 or s.start - s.first >= margin
        assert s.last == length or s.last - s.stop >= margin
        assert s.last - s.first >= 32


def test_tile_grid_lists_rows_then_columns():
    grid = tile_grid(100, 140, 48, 80, 16)
    assert [(t.rows.start, t.cols.start) for t in grid] == [(r, c) for r in (0, 48, 96) for c in (0, 48, 96)]
    strips = tile_grid(100, 140, (32, 144), 80, 16)
    assert [(t.rows.start, t.cols.start, t.cols.stop) for t in strips] == [(r, 0, 140) for r in (0, 32, 64, 96)]


def test_spans_refuse_a_tile_off_the_pooling_grid():
    with pytest.raises(NSTError, match="multiples of the pooling grid, 16 pixels"):
        spans(100, 40, 80, 16)


def test_an_image_too_small_to_tile_is_named_by_its_size_not_by_an_axis():
    # It read "an axis of 3 pixels" for a tile of 32: the 3 was the image's height.
    with pytest.raises(NSTError, match=r"a 64x3 image is below the network's smallest input \(32x32\), tiled or not"):
        TilePlan.of(["conv1_1"], 32).grid(3, 64)
    with pytest.raises(NSTError, match=r"length 3 \(the image's side\) is below the network's smallest input, 32"):
        spans(3, 32, 0, 1)


@pytest.mark.parametrize(
    "args, message",
    [
        (("100", 48, 80, 16), "length must be a positive whole number; got '100'"),
        ((100, 48.0, 80, 16), "tile must be a positive whole number; got 48.0"),
        ((100, 48, -16, 16), "margin must be a whole number of at least 0; got -16"),
        ((100, 48, 80, 0), "align must be a positive whole number; got 0"),
        ((100, 48, 80, 16, None), "min_size must be a positive whole number; got None"),
        ((2**31 - 1, 1, 0, 1), r"2147483647 pixels in tiles of 1 pixels makes 2147483647 tiles, more than 16777216"),
    ],
)
def test_spans_name_the_argument_they_cannot_use(args, message):
    with pytest.raises(NSTError, match=message):
        spans(*args)


@pytest.mark.parametrize(
    "args, message",
    [
        ((100, 140, (16, 16, 16), 0, 16), r"tile must be a side or a \(rows, columns\) pair; got \(16, 16, 16\)"),
        ((100, 140, (16, "16"), 0, 16), "tile must be a positive whole number; got '16'"),
        ((100.0, 140, 16, 0, 16), "height must be a positive whole number; got 100.0"),
        ((100, 10**400, 16, 0, 16), "width must be at most 2147483647"),
        ((2**31 - 1, 2**31 - 1, 16, 0, 16), r"a 2147483647x2147483647 image in tiles of 16x16 pixels makes \d+ tiles"),
    ],
)
def test_tile_grids_name_the_argument_they_cannot_use_and_never_list_absurd_grids(args, message):
    with pytest.raises(NSTError, match=message):
        tile_grid(*args)


COURSE = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]


@pytest.mark.parametrize(
    "args, options, message",
    [
        (([], 32), {}, "layers: give at least one layer"),
        ((["conv9_9"], 32), {}, "layer 'conv9_9' is not a VGG-19 layer"),
        ((None, 32), {}, "layers must be a list of layer names; got None"),
        (("conv1_1", 32), {}, "layers must be a list of layer names; got 'conv1_1'"),
        (([1, 2], 32), {}, r"layers must be a list of layer names; got \(1, 2\)"),
        (
            (COURSE, 0),
            {},
            "tile_size must be a positive whole number of pixels or a .* each at most 2147483647; got 0$",
        ),
        ((COURSE, -1), {}, "tile_size must be a positive whole number of pixels .*; got -1$"),
        (
            (COURSE, 10**30),
            {},
            "tile_size must be a positive whole number of pixels .*; got 1000000000000000000000000000000",
        ),
        ((COURSE, 32.0), {}, "tile_size must be a positive whole number of pixels .*; got 32.0"),
        ((COURSE, "32"), {}, "tile_size must be a positive whole number of pixels .*; got '32'"),
        ((COURSE, (32, 0)), {}, r"tile_size must be .*; got \(32, 0\)"),
        (
            (COURSE, 32),
            {"margin": -1},
            "margin must be a whole number of at least 80 pixels, what conv5_1 needs .*; got -1",
        ),
        ((COURSE, 32), {"margin": 80.0}, "margin must be a whole number of at least 80 pixels.*; got 80.0"),
        ((COURSE, 32), {"margin": 10**30}, "margin must be at most 2147483647"),
        ((COURSE, 32), {"network": "resnet"}, "network must be one of vgg19, squeezenet; got 'resnet'"),
        ((COURSE, 32), {"network": None}, "network must be one of vgg19, squeezenet; got None"),
        ((COURSE, 32), {"pooling": "median"}, "pooling must be one of 'avg', 'max'; got 'median'"),
        ((COURSE, 32), {"keep_forward": "yes"}, "keep_forward must be True or False; got 'yes'"),
    ],
)
def test_a_tile_plan_names_the_argument_it_cannot_use(args, options, message):
    with pytest.raises(NSTError, match=message):
        TilePlan.of(*args, **options)


def test_a_tile_plan_takes_numpy_whole_numbers_and_any_sequence_of_layers():
    plan = TilePlan.of(iter(COURSE), np.int64(33), margin=np.int32(81))
    assert (plan.tile_size, plan.margin, plan.layers) == ((48, 48), 96, tuple(COURSE))
    assert TilePlan.of(COURSE, 2**31 - 1).grid(64, 64)[0].rows == TilePlan.of(COURSE, 64).grid(64, 64)[0].rows


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: get_network("resnet"), "network must be one of vgg19, squeezenet; got 'resnet'"),
        (lambda: get_network(None), "network must be one of vgg19, squeezenet; got None"),
        (lambda: get_network(["vgg19"]), r"network must be one of vgg19, squeezenet; got \['vgg19'\]"),
        (lambda: VGG19_NETWORK.stride("conv9_9"), "layer 'conv9_9' is not a VGG-19 layer"),
        (lambda: VGG19_NETWORK.reach("fc7"), "layer 'fc7' is not a VGG-19 layer"),
        (lambda: VGG19_NETWORK.length(64, "pool1", "avg"), "layer 'pool1' is not a VGG-19 layer"),
        (lambda: VGG19_NETWORK.length(64, "conv1_1", "median"), "pooling must be one of 'avg', 'max'; got 'median'"),
        (lambda: VGG19_NETWORK.alignment(["conv1_1", "conv6_1"]), "layer 'conv6_1' is not a VGG-19 layer"),
        (lambda: VGG19_NETWORK.margin(["conv5_5"]), "layer 'conv5_5' is not a VGG-19 layer"),
        (lambda: VGG19_NETWORK.margin([]), "layers: give at least one layer"),
        (lambda: VGG19_NETWORK.deepest([None]), "layer None is not a VGG-19 layer"),
        (lambda: VGG19_NETWORK.check_layer("content_layer", 4), "content_layer 4 is not a VGG-19 layer"),
    ],
)
def test_networks_name_an_unknown_network_or_layer(call, message):
    with pytest.raises(NSTError, match=message):
        call()


# In the loop ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tile_size, keep_forward, count",
    [((24, 32), False, 4), ((24, 32), True, 4), ((16, 64), True, 3)],
    ids=["tiles", "tiles-forward-kept", "strips-forward-kept"],
)
def test_a_traced_adam_run_in_tiles_follows_the_untiled_run(model, images, tile_size, keep_forward, count):
    # Traced as StyleTransfer traces its steps: with keep_forward, the kept
    # forward passes join pass 1 and pass 2 in one graph.
    config = _config("block2", epochs=3, print_every=1, seed=0, tv_weight=0.2)
    untiled = list(StyleTransfer(StyleCost(model, *images, config)).run())
    tiled_cost = TiledStyleCost(model, *images, config, tile_size=tile_size, keep_forward=keep_forward)
    tiled = list(StyleTransfer(tiled_cost).run())
    assert len(tiled_cost.tiles) == count
    for a, b in zip(untiled, tiled):
        assert b.total_cost == pytest.approx(a.total_cost, rel=1e-5)
        np.testing.assert_allclose(b.image, a.image, atol=1e-3)


def test_lbfgs_and_colour_preservation_work_on_the_whole_tiled_image(model, images):
    content, style = images
    config = _config("block2", epochs=6, print_every=5, seed=0, optimizer="lbfgs", preserve_colors="luminance")
    reports = list(StyleTransfer(TiledStyleCost(model, content, style, config, tile_size=24)).run())
    assert reports[-1].total_cost < 0.5 * reports[0].total_cost
    assert reports[-1].image.shape == content.shape


# Refusals -------------------------------------------------------------------------------------


def test_tiling_needs_a_model_that_names_its_pooling(model, images):
    def bare(image, layers):
        return model(image, layers=layers)

    with pytest.raises(NSTError, match="tiling needs a VGG19 model"):
        TiledStyleCost(bare, *images)


@pytest.mark.parametrize("tile_size", [0, 2.5, (16,), (16, 0), True])
def test_a_tile_size_that_is_not_one_or_two_positive_whole_numbers_is_refused(model, images, tile_size):
    with pytest.raises(NSTError, match="tile_size must be a positive whole number of pixels or a"):
        TiledStyleCost(model, *images, tile_size=tile_size)


def test_a_tiled_cost_refuses_an_image_of_another_size(model, images, rng):
    tiled = TiledStyleCost(model, *images, _config("block1"), tile_size=32)
    with pytest.raises(
        NSTError, match=r"image has shape \(1, 40, 64, 3\); this TiledStyleCost is for \(1, 48, 64, 3\)"
    ):
        tiled(rng.normal(0, 1, (1, 40, 64, 3)).astype(np.float32))
