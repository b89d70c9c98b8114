"""The command's large-image options: --scales, --scale_epochs, --style_scale, --max_memory, --tile_size."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import nst_tf.plan.memory
import nst_tf.objective.tiled
from nst_tf.app.cli import main
from nst_tf.plan.memory import MemoryModel, plan_tiles
from nst_tf.plan.tiles import TilePlan, best_tile_shape, tile_grid

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


def test_min_scale_and_scale_factor_choose_the_sizes(workspace, capsys, cli_args):
    # From 64x48 down by 1.5 while the longer side is at least 40: 64 and 43 (64 / 1.5 rounded).
    assert main(cli_args("--min_scale", "40", "--scale_factor", "1.5", "--scale_epochs", "1", epochs=1)) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("Scale")] == ["Scale 1/2: 43x32", "Scale 2/2: 64x48"]
    with Image.open(workspace / "out" / "scale1.png") as first:
        assert first.size == (43, 32)


def test_carry_state_starts_each_size_with_the_last_sizes_moments(workspace, cli_args):
    def final(name, *extra):
        folder = ["--output_dir", str(workspace / name)]  # the later --output_dir is the one taken
        argv = cli_args("--scales", "2", "--scale_epochs", "2", "--seed", "1", *folder, *extra, epochs=2)
        assert main(_sized(argv, 96, 64)) == 0
        with Image.open(workspace / name / "generated_image.jpg") as image:
            return np.asarray(image, dtype=np.int16)

    plain, again, carried = final("a"), final("b"), final("c", "--carry_state")
    np.testing.assert_array_equal(plain, again)  # a run is repeatable: the difference below is carry_state's
    assert np.abs(carried - plain).max() > 2


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
    monkeypatch.setattr(nst_tf.plan.memory, "available_bytes", lambda: None)
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
        (
            ["--max_memory", "1M"],
            "a run at 64x48 needs about 877 MiB of memory; the budget (--max_memory) is 1.00 MiB (Python, "
            "TensorFlow and VGG-19 alone take about 870 MiB: use a larger --max_memory)",
        ),
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
    assert "is the run's input" in capsys.readouterr().err


def test_large_image_options_are_listed_in_help():
    done = subprocess.run([sys.executable, "-m", "nst_tf", "-h"], capture_output=True, text=True, check=True)
    assert "large images:" in done.stdout
    for option in ("--scales N", "--scale_epochs N", "--scale_factor F", "--min_scale N", "--carry_state"):
        assert option in done.stdout, option
    for option in ("--style_scale X", "--max_memory SIZE", "--tile_size N"):
        assert option in done.stdout, option


# What the hostile-user sweep found ----------------------------------------------------------------------


def _refused(capsys, argv):
    """``main(argv)`` exits 2 with one line on standard error; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nst-tf: error: ") and "Traceback" not in err[0], err
    return err[0]


NINES = "9" * 400


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--scales", "1100"], "with 1100 scales the first is 1x1 pixels, below the network's smallest input "),
        (
            ["--scales", "3"],
            "with 3 scales the first is 16x12 pixels, below the network's smallest input (32x32); "
            "use at most 1 scale at 64x48",
        ),
        (["--scales", "100000000000000000000"], "argument --scales: must be at most 2147483647; got 1000"),
        (
            ["--scales", NINES],
            "argument --scales: must be at most 2147483647; got 99999999999999999999...99999999 (400 characters)",
        ),
        (["--scale_epochs", "2147483648"], "argument --scale_epochs: must be at most 2147483647; got 2147483648"),
        (["--tile_size", NINES], "argument --tile_size: must be at most 2147483647"),
        (
            ["--style_scale", "1e308"],
            "style_scale 1e+308 makes the style images larger than 2147483647 pixels a side for a 64x48 output",
        ),
        (["--style_scale", "1e400"], "style_scale must be a positive number; got inf"),
        (["--style_scale", "nan"], "style_scale must be a positive number; got nan"),
        (["--style_scale", "-inf"], "style_scale must be a positive number; got -inf"),
        (["--max_memory", NINES], "argument --max_memory: a memory size must be at most 1048576T (1 EiB); got '9"),
        (["--max_memory", "1e400"], "argument --max_memory: expected a memory size such as 6G"),
        (["--max_memory", "-1G"], "argument --max_memory: a memory size must be positive; got '-1G'"),
        (["--max_memory=-1G"], "argument --max_memory: a memory size must be positive; got '-1G'"),
        (["--max_memory", "-1"], "argument --max_memory: a memory size must be positive; got '-1'"),
        (["--max_memory", "-0.5g"], "argument --max_memory: a memory size must be positive; got '-0.5g'"),
        (["--max_memory", "0"], "max_memory must be positive; got 0"),
        (["--scale_factor", "1"], "scale factor must be a finite number above 1; got 1.0"),
        (["--scale_factor", "nan"], "scale factor must be a finite number above 1; got nan"),
        (["--scale_factor", "1e400"], "scale factor must be a finite number above 1; got inf"),
        (["--min_scale", "0"], "min_scale must be a positive whole number; got 0"),
        (["--min_scale", NINES], "argument --min_scale: must be at most 2147483647"),
        (["--scales", "2", "--min_scale", "40"], "scales and min_scale: give one of them"),
        (["--carry_state", "--optimizer", "lbfgs"], "--carry_state: only Adam's moments are carried"),
    ],
)
def test_absurd_large_image_options_are_refused_in_one_line_before_anything_is_created(
    workspace, capsys, cli_args, extra, message
):
    assert message in _refused(capsys, cli_args(*extra))
    assert not (workspace / "out").exists()


def test_a_memory_refusal_shows_two_different_numbers(workspace, capsys, cli_args):
    # It read "needs about 0.2 GiB ... the budget is 0.2 GiB": one decimal of GiB hid the difference.
    line = _refused(capsys, cli_args("--max_memory", "200M"))
    needed, budget = re.search(
        r"needs about ([\d.,]+ \w+) .*the budget \(--max_memory\) is ([\d.,]+ \w+)", line
    ).groups()
    assert budget == "200 MiB" and needed != budget, line


@pytest.mark.parametrize(
    "n, shown",
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.00 KiB"),
        (200 * 2**20, "200 MiB"),
        (int(0.2 * 2**30), "205 MiB"),
        (int(1.5 * 2**30), "1.50 GiB"),
        (int(38.25 * 2**30), "38.2 GiB"),
        (5000 * 2**40, "5,000 TiB"),
    ],
)
def test_memory_sizes_in_messages_keep_three_digits_in_the_unit_they_reach(n, shown):
    assert nst_tf.plan.memory._gib(n) == shown


def test_an_absurd_scale_count_with_a_used_output_folder_is_refused_at_once(workspace, cli_args):
    # With a file in the folder, every scale's file name was listed first: it hung at 10**20 scales.
    (workspace / "out").mkdir()
    (workspace / "out" / "notes.txt").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf", *cli_args("--scales", "2147483647")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "with 2147483647 scales the first is 1x1 pixels" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert os.listdir(workspace / "out") == ["notes.txt"]


def _link_to_a_file_elsewhere(path, name):
    """A relative link at ``path`` to a new file ``name`` in the folder above its folder."""
    (path.parent.parent / name).write_bytes(b"kept")
    os.symlink(os.path.join("..", name), path)


@pytest.mark.parametrize(
    "make",
    [
        lambda path: os.symlink(path.parent / "gone.png", path),
        lambda path: os.symlink(path, path),
        lambda path: _link_to_a_file_elsewhere(path, "elsewhere.png"),
    ],
    ids=["dangling", "self-looping", "to-another-folder"],
)
def test_an_earlier_scales_image_name_held_by_a_link_is_refused_before_any_work(
    workspace, capsys, monkeypatch, cli_args, make
):
    monkeypatch.setattr("nst_tf.tensors.vgg19_module.VGG19", lambda *a, **k: pytest.fail("work started"))
    (workspace / "out").mkdir()
    make(workspace / "out" / "scale1.png")
    line = _refused(capsys, _sized(cli_args("--scales", "2"), 96, 64))
    assert (
        f"{workspace / 'out' / 'scale1.png'} is a symbolic link; this run would save an image under that name" in line
    )
    assert os.listdir(workspace / "out") == ["scale1.png"]
    assert not (workspace / "gone.png").exists()
    assert not (workspace / "elsewhere.png").exists() or (workspace / "elsewhere.png").read_bytes() == b"kept"


def test_a_link_named_like_a_scale_this_run_does_not_save_is_left_alone(workspace, cli_args):
    (workspace / "out").mkdir()
    os.symlink(workspace / "gone.png", workspace / "out" / "scale2.png")  # a 2-scale run saves only scale1.png
    assert main(_sized(cli_args("--scales", "2", epochs=1), 96, 64)) == 0
    assert os.path.islink(workspace / "out" / "scale2.png")


def test_a_rerun_over_an_earlier_scales_image_says_it_replaces_it(workspace, capsys, cli_args):
    (workspace / "out").mkdir()
    (workspace / "out" / "scale1.png").write_bytes(b"the user's own file")
    (workspace / "out" / "scale7.png").write_bytes(b"not this run's")
    assert main(_sized(cli_args("--scales", "2", "--scale_epochs", "1", epochs=1), 96, 64)) == 0
    err = capsys.readouterr().err
    assert f"nst-tf: note: {workspace / 'out'} already holds scale1.png; this run replaces it" in err
    assert (workspace / "out" / "scale1.png").read_bytes() != b"the user's own file"
    assert (workspace / "out" / "scale7.png").read_bytes() == b"not this run's"


@pytest.mark.parametrize(
    "args, message",
    [
        (("resnet",), "network must be one of vgg19, squeezenet; got 'resnet'"),
        (("vgg19", "sgd"), "optimizer must be one of adam, lbfgs; got 'sgd'"),
        (("vgg19", None), "optimizer must be one of adam, lbfgs; got None"),
        (("vgg19", "lbfgs", 0), "lbfgs_history must be a positive whole number; got 0"),
        (("vgg19", "lbfgs", -1), "lbfgs_history must be a positive whole number; got -1"),
        (("vgg19", "lbfgs", 2.5), "lbfgs_history must be a positive whole number; got 2.5"),
        (("vgg19", "lbfgs", "100"), "lbfgs_history must be a positive whole number; got '100'"),
        (("vgg19", "lbfgs", 10**400), "lbfgs_history must be at most 2147483647"),
    ],
)
def test_a_memory_model_names_the_argument_it_cannot_use(args, message):
    with pytest.raises(nst_tf.NSTError, match=message):
        MemoryModel(*args)


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
    plan = plan_tiles(1024, 1024, COURSE_LAYERS, max_memory=int(2.5 * GiB), keep_forward=False)
    assert (plan.tile_size, plan.keep_forward) == ((512, 1024), False)


def test_the_estimate_is_of_the_whole_process_and_counts_the_style_images():
    memory = MemoryModel()
    # Python and TensorFlow's runtime, VGG-19's 80 MiB of weights, and the steps' share above them.
    # The image's share carries a tenth more than the bare measurements.
    assert memory.whole(64, 48) - memory.runtime() == 2200 * 64 * 48 * 11 // 10
    assert memory.runtime() > 800 * 2**20
    # A style image 16 times the output's side: its forward pass outweighs the steps.
    assert memory.whole(64, 48, style=(1024, 768)) - memory.runtime() == 1400 * 1024 * 768 * 11 // 10


def test_a_style_image_too_large_to_run_whole_gets_tiles():
    budget = GiB + 600 * 2**20
    assert plan_tiles(256, 256, COURSE_LAYERS, max_memory=budget) is None
    plan = plan_tiles(256, 256, COURSE_LAYERS, max_memory=budget, style=(1024, 1024))
    assert plan is not None and MemoryModel().tiled(256, 256, plan, style=(1024, 1024)) <= budget
    assert len(plan.grid(1024, 1024)) > 1


def test_a_budget_below_what_tensorflow_alone_takes_is_refused_saying_so():
    with pytest.raises(nst_tf.NSTError, match=r"Python, TensorFlow and VGG-19 alone take about 870 MiB"):
        plan_tiles(64, 48, COURSE_LAYERS, max_memory=600 * 2**20)


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


def test_a_run_within_a_budget_peaks_below_it(cli_args, workspace):
    # The whole process: Python, TensorFlow's runtime, the network, the style images (4x the output).
    # Its own high-water mark (VmHWM): ru_maxrss of a child started by vfork counts this process's peak.
    code = (
        "import sys\n"
        "from nst_tf.app.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "print(next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')))\n"
        "sys.exit(status)\n"
    )
    argv = cli_args("--max_memory", "1100M", "--style_scale", "4", epochs=2)
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=workspace, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) * 1024 <= 1100 * 2**20
