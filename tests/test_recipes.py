"""What other recipes need from the loop: Adam's two decays, an average of the iterates, and Adam's moments carried
from one scale to the next; each checked against a NumPy reference of its formula."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from nst_tf import StyleCost, StyleTransfer
from nst_tf.ground.errors import NSTError
from nst_tf.plan.config import StyleTransferConfig
from nst_tf.plan.large_options import LargeImageOptions
from nst_tf.runs.coarse_to_fine import CoarseToFine
from nst_tf.tensors.quiet import tensorflow as tf


def _iterates(model, images, config, steps):
    """The image after each of ``steps`` single steps, and the gradient at each start, as float64 arrays."""
    objective = StyleCost(model, *images, config)
    transfer = StyleTransfer(objective, config)
    iterates, gradients = [transfer.image.numpy().astype(np.float64)], []
    for _ in range(steps):
        gradients.append(objective.value_and_gradient(tf.constant(transfer.image.numpy()))[1].numpy())
        transfer.step(1)
        iterates.append(transfer.image.numpy().astype(np.float64))
    return transfer, iterates, gradients


@pytest.mark.parametrize("beta_1, beta_2", [(0.99, 0.999), (0.9, 0.99)])
def test_adam_steps_follow_its_formula_with_the_decays_given(model, images, beta_1, beta_2):
    config = StyleTransferConfig(epochs=3, seed=4, learning_rate=5.0, adam_beta_1=beta_1, adam_beta_2=beta_2)
    _, iterates, gradients = _iterates(model, images, config, 3)
    m = v = 0.0
    for t, (start, g) in enumerate(zip(iterates, gradients), 1):
        g = g.astype(np.float64)
        m, v = beta_1 * m + (1 - beta_1) * g, beta_2 * v + (1 - beta_2) * g**2
        rate = 5.0 * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)  # Keras folds the bias corrections into the rate
        expected = start - rate * m / (np.sqrt(v) + config.adam_epsilon)
        np.testing.assert_allclose(iterates[t], expected, rtol=1e-4, atol=2e-3)


def test_the_average_is_the_bias_corrected_moving_average_of_the_iterates(model, images):
    decay = 0.8
    plain, iterates, _ = _iterates(model, images, StyleTransferConfig(epochs=5, seed=1), 5)
    averaged, same_iterates, _ = _iterates(model, images, StyleTransferConfig(epochs=5, seed=1, average=decay), 5)
    np.testing.assert_array_equal(iterates[-1], same_iterates[-1])  # averaging leaves the optimization alone
    weights = np.array([(1 - decay) * decay ** (5 - i) for i in range(1, 6)])
    expected = np.tensordot(weights, np.stack(iterates[1:]), axes=1) / (1 - decay**5)
    np.testing.assert_allclose(averaged.result(), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(plain.result(), plain.image.numpy())
    assert np.abs(averaged.result() - iterates[-1]).max() > 1  # not the last iterate


def test_reports_give_the_average_and_its_costs(model, images):
    config = StyleTransferConfig(epochs=6, print_every=3, seed=2, average=0.9)
    objective = StyleCost(model, *images, config)
    transfer = StyleTransfer(objective, config)
    for progress in transfer.run():
        np.testing.assert_allclose(progress.image, objective.present(transfer.result()))
        assert progress.total_cost == pytest.approx(float(objective(tf.constant(transfer.result()))["total"]), 1e-5)


def test_a_restart_forgets_the_average(model, images):
    config = StyleTransferConfig(epochs=3, seed=2, average=0.9)
    transfer = StyleTransfer(StyleCost(model, *images, config))
    list(transfer.run())
    transfer.restart(initial_image=images[0])
    np.testing.assert_array_equal(transfer.result(), images[0])


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"adam_beta_1": 1.0}, "adam_beta_1 must be at least 0 and below 1"),
        ({"adam_beta_2": -0.1}, "adam_beta_2 must be zero or more"),
        ({"average": 1.5}, "average must be at least 0 and below 1"),
        ({"average": 0.9, "optimizer": "lbfgs"}, "average: only Adam's iterates are averaged"),
    ],
)
def test_decays_out_of_range_and_averaging_l_bfgs_are_refused(fields, message):
    with pytest.raises(NSTError, match=message):
        StyleTransferConfig(**fields)


def _resized(array, height, width):
    """Bilinear resizing with half-pixel centres, in NumPy: (1, h, w, c) -> (1, height, width, c)."""

    def axis(length, size):
        x = np.clip((np.arange(size) + 0.5) * length / size - 0.5, 0, length - 1)
        low = np.floor(x).astype(int)
        return low, np.minimum(low + 1, length - 1), x - low

    (y0, y1, fy), (x0, x1, fx) = axis(array.shape[1], height), axis(array.shape[2], width)
    rows = array[:, y0] * (1 - fy)[None, :, None, None] + array[:, y1] * fy[None, :, None, None]
    return rows[:, :, x0] * (1 - fx)[None, None, :, None] + rows[:, :, x1] * fx[None, None, :, None]


def test_adams_moments_carry_to_a_larger_image_resized_with_its_step_count(model, rng):
    small, large = (rng.uniform(-50, 50, (1, 32, 40, 3)).astype(np.float32) for _ in range(2))
    bigger = [rng.uniform(-50, 50, (1, 48, 64, 3)).astype(np.float32) for _ in range(2)]
    config = StyleTransferConfig(epochs=3, seed=1)
    first = StyleTransfer(StyleCost(model, small, large, config))
    list(first.run())
    second = StyleTransfer(StyleCost(model, *bigger, config))
    second.take_state(first.optimizer_state())
    carried = 0
    for before, after in zip(first.optimizer.variables, second.optimizer.variables):
        if before.shape.rank == 4:
            # TensorFlow computes the sampling positions in float32: agreement to about 1e-4 of the values' scale.
            scale = np.abs(before.numpy()).max()
            np.testing.assert_allclose(after.numpy(), _resized(before.numpy(), 48, 64), atol=1e-4 * scale)
            carried += 1
    assert carried == 2  # the first and second moments
    assert int(second.optimizer.iterations) == 3


def test_coarse_to_fine_with_carried_state_continues_adams_count(model, rng):
    pixels = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2)]
    run = CoarseToFine(model, *pixels, StyleTransferConfig(epochs=2, seed=1), [(32, 40), (48, 64)], carry_state=True)
    list(run.run())
    assert int(run.transfer.optimizer.iterations) == 4  # 2 at each size, one count


def test_l_bfgs_state_does_not_carry(model, rng):
    pixels = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(2)]
    with pytest.raises(NSTError, match="carry_state: only Adam's moments are carried"):
        CoarseToFine(model, *pixels, StyleTransferConfig(optimizer="lbfgs"), [(48, 64)], carry_state=True)


def test_the_fast_preset_runs_the_courses_objective_coarse_to_fine_with_l_bfgs(workspace, new_weights_file, capsys):
    from nst_tf.app.cli import main
    from nst_tf.runs.presets import PRESETS

    fast, course = PRESETS["fast"].config, StyleTransferConfig()
    objective = ("alpha", "beta", "content_layer", "style_layers", "normalization", "style_normalizer", "tv_weight")
    assert all(getattr(fast, name) == getattr(course, name) for name in objective)  # the course's objective
    out = workspace / "out"
    args = ["-c", str(workspace / "content.png"), "-s", str(workspace / "style.png"), "--model", str(new_weights_file)]
    assert main(["--preset", "fast", *args, "--output_dir", str(out), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Iteration 0 :\ntotal cost = " in printed  # the course's lines
    assert "done: 40 iterations" in printed  # 30 at half size, 10 at the course's
    with Image.open(out / "generated_image.jpg") as final, Image.open(out / "scale1.png") as half:
        assert (final.size, half.size) == ((400, 300), (200, 150))  # the course's size
    first = float(printed.split("total cost = ")[1].split()[0])
    last = float(printed.rsplit("total ", 1)[1].split(";")[0])
    assert last < first / 2


def _style_transfer_pytorch_sides(start, end, factor):
    """crowsonkb/style-transfer-pytorch's sizes (its gen_scales, by any factor): the output's longer side divided
    by factor**i, rounded, while at least ``start``."""
    sides, i, side = set(), 0, end
    while side >= start:
        sides.add(side)
        i += 1
        side = round(end / factor**i)
    return sorted(sides)


@pytest.mark.parametrize(
    "height, width, min_scale, factor",
    [
        (300, 400, 128, 2**0.5),
        (768, 1024, 128, 2**0.5),
        (1200, 1600, 200, 2.0),
        (300, 400, 200, 2.0),
        (1200, 900, 150, 1.5),
    ],
)
def test_min_scale_takes_the_sizes_style_transfer_pytorch_takes(height, width, min_scale, factor):
    sizes = LargeImageOptions(min_scale=min_scale, scale_factor=factor).sizes(height, width)
    assert [max(size) for size in sizes] == _style_transfer_pytorch_sides(min_scale, max(height, width), factor)
    assert sizes[-1] == (height, width)


@pytest.mark.parametrize(
    "height, width, min_scale, expected",
    [
        (150, 200, 300, [(150, 200)]),  # a min_scale above the output: the output alone
        (64, 1024, 100, [(32, 512), (64, 1024)]),  # 256 px long would be 16 px high, below the network's 32
    ],
)
def test_min_scale_keeps_the_output_and_what_the_network_takes(height, width, min_scale, expected):
    assert LargeImageOptions(min_scale=min_scale).sizes(height, width) == expected


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"scale_factor": 1}, "scale factor must be a finite number above 1; got 1"),
        ({"scale_factor": True}, "scale factor must be a finite number above 1; got True"),
        ({"scale_factor": float("inf")}, "scale factor must be a finite number above 1; got inf"),
        ({"min_scale": 0}, "min_scale must be a positive whole number; got 0"),
        ({"min_scale": 2.5}, "min_scale must be a positive whole number; got 2.5"),
        ({"min_scale": 200, "scales": 2}, "scales and min_scale: give one of them"),
    ],
)
def test_bad_coarse_to_fine_options_are_refused(fields, message):
    with pytest.raises(NSTError, match=re.escape(message)):
        LargeImageOptions(**fields)


def test_the_fast_preset_on_a_folder_names_its_coarse_to_fine_and_the_fix(workspace, new_weights_file, capsys):
    from nst_tf.app.cli import main

    folder = workspace / "photos"
    folder.mkdir()
    for name in ("a.png", "b.png"):
        (folder / name).write_bytes((workspace / "content.png").read_bytes())
    out = workspace / "out"
    args = ["--preset", "fast", "-c", str(folder), "-s", str(workspace / "style.png"), "--model", str(new_weights_file)]
    assert main([*args, "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--preset fast (coarse to fine): several content images run at one size each; give --scales 1" in err
    assert main([*args, "--output_dir", str(out), "--scales", "1", "--width", "64", "--height", "48", "-n", "2"]) == 0
    assert {"a.jpg", "b.jpg"} <= set(os.listdir(out))


@pytest.mark.parametrize(
    "height, width, sides",
    [(300, 400, [200, 400]), (1200, 1600, [200, 400, 800, 1600]), (768, 1024, [256, 512, 1024]), (150, 200, [200])],
)
def test_the_fast_presets_sizes_follow_the_output(height, width, sides):
    from nst_tf.runs.presets import PRESETS

    assert [max(size) for size in PRESETS["fast"].large.sizes(height, width)] == sides
