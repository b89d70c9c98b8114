"""The command's large-image options: --scales, --scale_epochs, --style_scale, --max_memory, --tile_size."""

import os
import subprocess
import sys

import pytest
from PIL import Image

import nst_tf.large.memory
import nst_tf.objective.tiled
from nst_tf.cli import main
from nst_tf.large.memory import MemoryModel, plan_tiles
from nst_tf.large.tiles import TilePlan, best_tile_shape, tile_grid

GiB = 2**30
COURSE_LAYERS = ["conv4_2", "conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]


def _sized(argv, width, height):
    argv = list(argv)
    argv[argv.index("--width") + 1], argv[argv.index("--height") + 1] = str(width), str(height)
    return argv


def test_scales_run_coarse_to_fine_and_save_each_earlier_scales_result(workspace, capsys, cli_args):
    argv = _sized(cli_args("--scales", "2", "--scale_epochs", "2", "--seed", "1", epochs=3), 96, 64)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("Scale")] == ["Scale 1/2: 48x32", "Scale 2/2: 96x64"]
    assert sorted(os.listdir(workspace / "out")) == ["0.png", "2.png", "generated_image.jpg", "scale1.png"]
    with Image.open(workspace / "out" / "scale1.png") as first, Image.open(workspace / "out" / "0.png") as last:
        assert (first.size, last.size) == ((48, 32), (96, 64))


def test_style_scale_fits_the_style_images_to_that_fraction_of_the_output(workspace, monkeypatch, cli_args):
    seen = []

    class Recording(nst_tf.objective.tiled.StyleCost):
        def __init__(self, model, content, styles, config):
            seen.append((content.shape, [style.shape for style in styles]))
            super().__init__(model, content, styles, config)

    monkeypatch.setattr(nst_tf.objective.tiled, "StyleCost", Recording)
    assert main(cli_args("--style_scale", "1.5", epochs=1)) == 0
    assert seen == [((1, 48, 64, 3), [(1, 72, 96, 3)])]


@pytest.mark.parametrize(
    "budget, keep_forward",
    [(["--max_memory", "2G"], True), ([], False)],
    ids=["room-to-keep-forward-passes", "memory-unknown"],
)
def test_tile_size_computes_the_run_in_tiles(workspace, monkeypatch, capsys, cli_args, budget, keep_forward):
    built = []

    class Recording(nst_tf.objective.tiled.TiledStyleCost):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append((len(self.tiles), self.keep_forward))

    monkeypatch.setattr(nst_tf.objective.tiled, "TiledStyleCost", Recording)
    monkeypatch.setattr(nst_tf.large.memory, "available_bytes", lambda: None)
    shallow = ["--content_layer", "conv2_2", "--style_layers", "conv1_1:0.5,conv2_1:0.5"]
    assert main(cli_args("--tile_size", "32", *shallow, *budget, epochs=2)) == 0
    assert built == [(4, keep_forward)]
    passes = "kept for" if keep_forward else "run again for"
    note = f"nst-tf: note: 64x48 is computed in 4 tiles of 32x32 pixels plus a 6-pixel margin; forward passes {passes}"
    assert note in capsys.readouterr().err
    with Image.open(workspace / "out" / "generated_image.jpg") as image:
        assert image.size == (64, 48)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--scales", "0"], "scales must be a positive whole number; got 0"),
        (["--scales", "2"], "with 2 scales the first is 32x24 pixels, below the network's smallest input"),
        (["--style_scale", "0.5"], "style_scale 0.5 makes the style images 32x24 pixels for a 64x48 output"),
        (["--style_scale", "-1"], "style_scale must be a positive number; got -1.0"),
        (["--max_memory", "lots"], "expected a memory size such as 6G, 512M or 1.5G; got 'lots'"),
        (["--max_memory", "1M"], "a run at 64x48 needs about 0.2 GiB of memory; the budget (--max_memory) is 0.0 GiB"),
        (["--tile_size", "0"], "tile_size must be a positive whole number; got 0"),
    ],
)
def test_bad_large_image_options_are_refused_before_anything_is_created(workspace, capsys, cli_args, extra, message):
    assert main(cli_args(*extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nst-tf: error: ") and message in err[0], err
    assert not (workspace / "out").exists()


def test_an_earlier_scales_image_name_that_is_an_input_is_refused(workspace, capsys, cli_args):
    (workspace / "out").mkdir()
    os.link(workspace / "style.png", workspace / "out" / "scale1.png")
    argv = _sized(cli_args("--scales", "2"), 96, 64)
    assert main(argv) == 2
    assert "is the input image" in capsys.readouterr().err


def test_large_image_options_are_listed_in_help():
    done = subprocess.run([sys.executable, "-m", "nst_tf", "-h"], capture_output=True, text=True, check=True)
    assert "large images:" in done.stdout
    for option in ("--scales N", "--scale_epochs N", "--style_scale X", "--max_memory SIZE", "--tile_size N"):
        assert option in done.stdout, option


# The memory plan ------------------------------------------------------------------------------


def test_a_run_that_fits_whole_is_not_tiled():
    assert plan_tiles(1024, 1024, COURSE_LAYERS, max_memory=20 * GiB) is None


def test_a_run_too_large_to_fit_whole_gets_tiles_that_fit():
    budget = 6 * GiB
    plan = plan_tiles(4096, 4096, COURSE_LAYERS, max_memory=budget)
    assert plan.tile_size[0] % plan.align == 0 and plan.tile_size[1] % plan.align == 0
    assert plan.margin == 80 and plan.align == 16
    # Kept forward passes of 16 MP would need more than the budget.
    assert not plan.keep_forward
    memory = MemoryModel()
    assert memory.tiled(4096, 4096, plan) <= budget
    assert memory.tiled(4096, 4096, _kept(plan)) > budget


def test_forward_passes_are_kept_where_the_budget_allows_it():
    budget = 20 * GiB
    plan = plan_tiles(4096, 4096, COURSE_LAYERS, max_memory=budget)
    assert plan.keep_forward
    assert MemoryModel().tiled(4096, 4096, plan) <= budget
    assert plan_tiles(4096, 4096, COURSE_LAYERS, max_memory=budget, keep_forward=False).keep_forward is False


def test_kept_forward_passes_that_cannot_fit_are_refused():
    message = r"needs about .* even in tiles of \d+x\d+ pixels keeping their forward passes"
    with pytest.raises(nst_tf.NSTError, match=message):
        plan_tiles(4096, 4096, COURSE_LAYERS, max_memory=6 * GiB, keep_forward=True)


def test_full_width_strips_are_chosen_where_one_fits():
    # Two strips of 512 rows compute 1184 of 1024 rows; 2x2 squares of 512 compute 1184x1184.
    plan = plan_tiles(1024, 1024, COURSE_LAYERS, max_memory=int(1.8 * GiB), keep_forward=False)
    assert (plan.tile_size, plan.keep_forward) == ((512, 1024), False)


def _kept(plan):
    return TilePlan(plan.network, plan.layers, plan.tile_size, plan.margin, True, plan.pooling)


def _computed_pixels(height, width, tile, margin, align):
    grid = tile_grid(height, width, tile, margin, align)
    return sum(t.extent_pixels for t in grid), max(t.extent_pixels for t in grid), len(grid)


@pytest.mark.parametrize("height, width, room", [(200, 300, 30000), (333, 150, 20000), (100, 100, 9000)])
def test_the_tile_shape_chosen_computes_the_fewest_pixels_of_all_that_fit(height, width, room):
    margin, align = 12, 4
    shapes = [(r, c) for r in range(align, height + align, align) for c in range(align, width + align, align)]
    fitting = [s for s in shapes if _computed_pixels(height, width, s, margin, align)[1] <= room]
    best = min(_computed_pixels(height, width, s, margin, align)[::2] for s in fitting)
    chosen = best_tile_shape(height, width, margin, align, room)
    assert _computed_pixels(height, width, chosen, margin, align)[1] <= room
    assert _computed_pixels(height, width, chosen, margin, align)[::2] == best


def test_no_tile_shape_fits_a_room_smaller_than_the_smallest_tile():
    assert best_tile_shape(200, 300, 12, 4, 20 * 20) is None


def test_an_lbfgs_history_that_cannot_fit_is_refused_with_one_that_would():
    with pytest.raises(
        nst_tf.NSTError, match=r"the history alone takes 38\.[23] GiB: --lbfgs_history \d+ or less would fit"
    ):
        plan_tiles(4096, 4096, COURSE_LAYERS, "lbfgs", 100, max_memory=12 * GiB)


def test_a_given_tile_size_over_the_budget_is_refused():
    with pytest.raises(nst_tf.NSTError, match="a run at 4096x4096 needs about .* even in tiles of 2048x2048 pixels"):
        plan_tiles(4096, 4096, COURSE_LAYERS, max_memory=6 * GiB, tile_size=2048)
