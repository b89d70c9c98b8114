"""Coarse to fine (nst_tf/runs/coarse_to_fine.py), scale sizes and style scale (nst_tf/plan/large_options.py)."""

import numpy as np
import pytest

from nst_tf import NSTError, StyleCost, StyleTransferConfig
from nst_tf.plan.large_options import LargeImageOptions, parse_bytes, scale_sizes, style_size
from nst_tf.runs.coarse_to_fine import CoarseToFine, ScaleProgress, upsample
from nst_tf.loop.optimize import Progress, Tick
from nst_tf.objective.tiled import TiledStyleCost


@pytest.fixture
def pixels(rng):
    """A smooth 8-bit content image (90x120) and a noisy style image (70x50)."""
    y, x = np.mgrid[0:90, 0:120]
    content = np.stack([2 * x, 2 * y, x + y], axis=2).astype(np.uint8)
    style = rng.integers(0, 256, size=(70, 50, 3), dtype=np.uint8)
    return content, style


class Recorder:
    """A ``make_objective`` that builds ``StyleCost``s and remembers the images each got."""

    def __init__(self, make=StyleCost):
        self.make = make
        self.calls, self.objectives = [], []

    def __call__(self, model, content, styles, config, size):
        assert tuple(size) == content.shape[1:3]
        self.calls.append((content.shape, [style.shape for style in styles], config.epochs))
        self.objectives.append(self.make(model, content, styles, config))
        return self.objectives[-1]


def test_scale_sizes_double_up_to_the_requested_size():
    assert scale_sizes(768, 1024, 3) == [(192, 256), (384, 512), (768, 1024)]
    assert scale_sizes(300, 400, 1) == [(300, 400)]
    assert scale_sizes(101, 151, 2) == [(50, 76), (101, 151)]


def test_scales_that_would_start_below_the_networks_smallest_input_are_refused():
    assert scale_sizes(300, 400, 4)[0] == (38, 50)
    with pytest.raises(
        NSTError, match=r"with 5 scales the first is 25x19 pixels, below .* use at most 4 scales at 400x300"
    ):
        scale_sizes(300, 400, 5)


def test_style_size_is_a_fraction_of_the_output_and_refuses_a_too_small_one():
    assert style_size(300, 400, 0.5) == (150, 200)
    assert style_size(300, 400, 1.5) == (450, 600)
    with pytest.raises(NSTError, match=r"style_scale 0.1 makes the style images 40x30 pixels"):
        style_size(300, 400, 0.1)


def test_upsample_keeps_a_constant_image_and_the_size_asked_for():
    image = np.full((1, 10, 12, 3), 7.5, np.float32)
    up = upsample(image, 20, 24)
    assert up.shape == (1, 20, 24, 3)
    np.testing.assert_allclose(up, 7.5, rtol=1e-6)


def test_coarse_to_fine_runs_each_scale_with_images_fitted_anew_at_its_size(model, pixels):
    record = Recorder()
    config = StyleTransferConfig(epochs=3, print_every=2, seed=0)
    sizes = [(48, 64), (96, 128)]
    run = CoarseToFine(model, *pixels, config, sizes, scale_epochs=2, style_scale=0.75, make_objective=record)
    items = list(run.run(ticks=True))
    assert record.calls == [((1, 48, 64, 3), [(1, 36, 48, 3)], 2), ((1, 96, 128, 3), [(1, 72, 96, 3)], 3)]
    reports = [(p.scale, p.scales, p.height, p.width, p.item.iteration) for p in items if isinstance(p.item, Progress)]
    assert reports == [(1, 2, 48, 64, 0), (1, 2, 48, 64, 1), (2, 2, 96, 128, 0), (2, 2, 96, 128, 2)]
    assert all(isinstance(p, ScaleProgress) and isinstance(p.item, (Progress, Tick)) for p in items)
    assert (run.iteration, run.total_iterations) == (5, 5)
    assert run.current_image().shape == (1, 96, 128, 3)


def test_each_scale_starts_from_the_previous_result_upsampled(model, pixels):
    # With a learning rate of 1e-6 one Adam step moves no pixel by more than
    # about 1e-6, so the next scale's first report shows where it started.
    config = StyleTransferConfig(epochs=1, seed=0, learning_rate=1e-6)
    run = CoarseToFine(model, *pixels, config, [(45, 60), (90, 120)], scale_epochs=3)
    finished = {}
    for progress in run.run():
        finished.setdefault(progress.scale, []).append(progress.item.image)
    np.testing.assert_allclose(finished[2][0], upsample(finished[1][-1], 90, 120), atol=1e-3)


def test_the_last_scale_can_be_computed_in_tiles(model, pixels):
    def make(model, content, styles, config):
        if content.shape[1] < 90:
            return StyleCost(model, content, styles, config)
        return TiledStyleCost(model, content, styles, config, tile_size=64)

    record = Recorder(make)
    config = StyleTransferConfig(
        epochs=1, seed=0, content_layer="conv2_2", style_layers=(("conv1_1", 0.5), ("conv2_1", 0.5))
    )
    last = list(CoarseToFine(model, *pixels, config, [(45, 60), (90, 120)], make_objective=record).run())[-1]
    assert [type(objective).__name__ for objective in record.objectives] == ["StyleCost", "TiledStyleCost"]
    assert (last.scale, last.item.iteration) == (2, 0)
    assert np.isfinite(last.item.total_cost)


def test_coarse_to_fine_refuses_what_it_cannot_use(model, pixels):
    content, style = pixels
    with pytest.raises(NSTError, match="content_pixels must be an 8-bit RGB image"):
        CoarseToFine(model, content.astype(np.float32), style, sizes=[(45, 60)])
    with pytest.raises(NSTError, match="sizes: give at least one"):
        CoarseToFine(model, content, style, sizes=[])
    with pytest.raises(NSTError, match="style_scale 0.2 makes the style images 12x9 pixels"):
        CoarseToFine(model, content, style, sizes=[(45, 60)], style_scale=0.2)


@pytest.mark.parametrize(
    "text, expected",
    [("6G", 6 * 2**30), ("512M", 512 * 2**20), ("1.5g", 3 * 2**29), ("2GiB", 2 * 2**30), ("4096", 4096)],
)
def test_memory_sizes_are_read_in_powers_of_1024(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"scales": 0}, "scales must be a positive whole number"),
        ({"scale_epochs": 1.5}, "scale_epochs must be a positive whole number"),
        ({"style_scale": 0.0}, "style_scale must be a positive number"),
        ({"style_scale": float("inf")}, "style_scale must be a positive number"),
        ({"max_memory": "lots"}, "expected a memory size such as 6G"),
        ({"tile_size": -16}, "tile_size must be a positive whole number"),
        # What the hostile-user sweep found: each was an OverflowError or TypeError, or was taken.
        ({"style_scale": float("nan")}, "style_scale must be a positive number; got nan"),
        ({"style_scale": "1"}, "style_scale must be a positive number; got '1'"),
        ({"style_scale": True}, "style_scale must be a positive number; got True"),
        ({"scales": 10**20}, "scales must be at most 2147483647; got 100000000000000000000"),
        ({"scales": 2.0}, "scales must be a positive whole number; got 2.0"),
        ({"scale_epochs": 2**31}, "scale_epochs must be at most 2147483647; got 2147483648"),
        ({"tile_size": 10**30}, "tile_size must be at most 2147483647"),
        ({"tile_size": "32"}, "tile_size must be a positive whole number; got '32'"),
        ({"max_memory": "9" * 400}, r"max_memory: a memory size must be at most 1048576T \(1 EiB\); got '99999"),
        ({"max_memory": 10**400}, r"max_memory: a memory size must be at most 1048576T \(1 EiB\); got 10000"),
        ({"max_memory": "-1G"}, "max_memory: a memory size must be positive; got '-1G'"),
        ({"max_memory": -1}, "max_memory must be positive; got -1"),
        ({"max_memory": "0.0000000001G"}, "max_memory must be positive; got .0.0000000001G."),
        ({"max_memory": float("inf")}, "max_memory: expected a memory size such as 6G"),
        ({"max_memory": True}, "max_memory: expected a memory size such as 6G"),
    ],
)
def test_large_image_options_refuse_bad_values(fields, message):
    with pytest.raises(NSTError, match=message):
        LargeImageOptions(**fields)


def test_large_image_options_take_numpy_whole_numbers_and_exact_memory_sizes():
    options = LargeImageOptions(scales=np.int64(2), tile_size=np.int32(64), max_memory="0.1G")
    assert (options.scales, options.tile_size, options.max_memory) == (2, 64, 2**30 // 10)
    assert type(options.scales) is int and type(options.tile_size) is int
    assert parse_bytes("0.3G") == 3 * 2**30 // 10  # exact: no float rounding
    with pytest.raises(NSTError, match="at most 1048576T"):
        parse_bytes("1048577T")
    assert parse_bytes("1048576T") == 2**60


@pytest.mark.parametrize(
    "args, message",
    [
        ((300, 400, 1100), r"with 1100 scales the first is 1x1 pixels, below .* use at most 4 scales at 400x300"),
        ((300, 400, 10**20), "scales must be at most 2147483647"),
        ((300, 400, 0), "scales must be a positive whole number; got 0"),
        ((300, 400, True), "scales must be a positive whole number; got True"),
        ((300.5, 400, 1), "height must be a positive whole number; got 300.5"),
        (("300", 400, 1), "height must be a positive whole number; got '300'"),
        ((300, 10**400, 1), r"width must be at most 2147483647; got 10000000000000000000\.\.\.00000000"),
        ((20, 30, 1), r"with 1 scales the first is 30x20 pixels, below .*\(32x32\); it is too small"),
        ((300, 400, 2, float("inf")), "scale factor must be a finite number above 1; got inf"),
        ((300, 400, 2, float("nan")), "scale factor must be a finite number above 1; got nan"),
        ((300, 400, 2, "2"), "scale factor must be a finite number above 1; got '2'"),
        ((300, 400, 2, 1), "scale factor must be a finite number above 1; got 1"),
    ],
)
def test_scale_sizes_refuse_what_they_cannot_use(args, message):
    with pytest.raises(NSTError, match=message):
        scale_sizes(*args)


def test_absurd_scale_counts_are_refused_before_any_size_is_listed():
    import time

    start = time.monotonic()
    for scales in (2**31 - 1, 10**6):
        with pytest.raises(NSTError, match=f"with {scales} scales the first is 1x1 pixels"):
            scale_sizes(300, 400, scales)
    assert time.monotonic() - start < 1
    assert scale_sizes(300, 400, 3, factor=2) == [(75, 100), (150, 200), (300, 400)]


@pytest.mark.parametrize(
    "style_scale, message",
    [
        (1e308, "style_scale 1e\\+308 makes the style images larger than 2147483647 pixels a side for a 400x300"),
        (float("nan"), "style_scale must be a positive number; got nan"),
        (float("-inf"), "style_scale must be a positive number; got -inf"),
        ("1", "style_scale must be a positive number; got '1'"),
    ],
)
def test_style_size_refuses_scales_it_cannot_make(style_scale, message):
    with pytest.raises(NSTError, match=message):
        style_size(300, 400, style_scale)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"style_scale": float("nan")}, "style_scale must be a positive number; got nan"),
        ({"style_scale": float("inf")}, "style_scale must be a positive number; got inf"),
        ({"style_scale": "1"}, "style_scale must be a positive number; got '1'"),
        ({"sizes": [5]}, r"sizes must be a list of \(height, width\) pairs of whole numbers; got \[5\]"),
        ({"sizes": 5}, r"sizes must be a list of \(height, width\) pairs of whole numbers; got 5"),
        ({"sizes": "ab"}, r"sizes must be a list of \(height, width\) pairs"),
        ({"sizes": [(45, 60, 3)]}, r"sizes must be a list of \(height, width\) pairs"),
        ({"sizes": [(45.0, 60)]}, r"sizes\[0\] height must be a positive whole number; got 45.0"),
        ({"sizes": [(45, 60), (90, "120")]}, r"sizes\[1\] width must be a positive whole number; got '120'"),
        ({"sizes": [(10**400, 60)]}, r"sizes\[0\] height must be at most 2147483647"),
        ({"sizes": [(45, 2**31)]}, r"sizes\[0\] width must be at most 2147483647; got 2147483648"),
        ({"make_objective": 5}, r"make_objective must be callable as make_objective\(model, .*; got int"),
        ({"make_objective": "StyleCost"}, "make_objective must be callable .*; got str"),
        ({"scale_epochs": 0}, "scale_epochs must be a positive whole number; got 0"),
        ({"scale_epochs": 2.5}, "scale_epochs must be a positive whole number; got 2.5"),
        ({"scale_epochs": 2**31}, "scale_epochs must be at most 2147483647"),
        ({"fit": "zoom"}, "fit must be one of crop, stretch; got 'zoom'"),
        ({"fit": None}, "fit must be one of crop, stretch; got None"),
    ],
)
def test_coarse_to_fine_names_the_argument_it_cannot_use(model, pixels, options, message):
    options = {"sizes": [(45, 60)], **options}
    with pytest.raises(NSTError, match=message):
        CoarseToFine(model, *pixels, **options)


def test_coarse_to_fine_takes_numpy_sizes(model, pixels):
    run = CoarseToFine(model, *pixels, sizes=np.array([[45, 60], [90, 120]]), style_scale=np.float32(1.0))
    assert run.sizes == [(45, 60), (90, 120)] and all(type(n) is int for size in run.sizes for n in size)


@pytest.mark.parametrize(
    "fields, message",
    [
        ((0, 1, 32, 32, Tick(1)), "scale must be a positive whole number; got 0"),
        ((3, 2, 32, 32, Tick(1)), r"scale must be at most scales \(2\); got 3"),
        ((1, 1.0, 32, 32, Tick(1)), "scales must be a positive whole number; got 1.0"),
        ((1, 1, "32", 32, Tick(1)), "height must be a positive whole number; got '32'"),
        ((1, 1, 32, -1, Tick(1)), "width must be a positive whole number; got -1"),
        ((1, 1, 32, 2**31, Tick(1)), "width must be at most 2147483647"),
        ((1, 1, 32, 32, "done"), "item must be a Progress or a Tick; got str"),
        ((1, 1, 32, 32, None), "item must be a Progress or a Tick; got NoneType"),
    ],
)
def test_scale_progress_checks_its_fields(fields, message):
    with pytest.raises(NSTError, match=message):
        ScaleProgress(*fields)
    assert ScaleProgress(np.int64(2), 2, 32, 48, Tick(1)).scale == 2
