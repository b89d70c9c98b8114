"""Training a fast style model: the objective falls on images it never saw, the style comes through, a run
stopped by a signal resumes where it was, and a folder that cannot be trained on is one line."""

import io
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nst_tf.app.train_cli import main
from nst_tf.ground.errors import NSTError
from nst_tf.loop.trainer import style_of_step
from nst_tf.plan.config import StyleTransferConfig
from nst_tf.plan.training_options import TrainConfig
from nst_tf.runs.fast_models import load_fast_model
from nst_tf.runs.training_data import MIN_CONTENT_SIDE, list_training_images, training_batches

#: A small network and small crops: a step takes tens of milliseconds on a CPU.
SMALL = dict(image_size=32, batch_size=4, width=0.25, blocks=1)
LEARNING_RATE = 3e-2
SMALL_ARGS = ["--image_size", "32", "--batch_size", "4", "--width", "0.25", "--blocks", "1", "--learning_rate", "3e-2"]


def photo(seed, height=40, width=40):
    """A structured synthetic photo: gradients, a bright disc and a dark bar at places of ``seed``, plus noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * rng.uniform(2, 6), y * rng.uniform(2, 6), (x + y) * rng.uniform(1, 3)], axis=2)
    cy, cx = rng.integers(0, height), rng.integers(0, width)
    base[(y - cy) ** 2 + (x - cx) ** 2 < rng.integers(20, 120)] = 250
    base[:, rng.integers(0, width - 4) :][:, :4] = 10
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def write_photos(folder, count, first_seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shape = (40, 40) if i % 3 else (40, 56)  # some wider: resized to the shorter side, then cropped
        Image.fromarray(photo(first_seed + i, *shape)).save(folder / f"photo{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """24 training photos, 4 held-out photos (never trained on) and two style images."""
    root = tmp_path_factory.mktemp("train")
    write_photos(root / "photos", 24)
    held_out = np.stack([photo(1000 + i)[4:36, 4:36] for i in range(4)]).astype(np.float32)
    rng = np.random.default_rng(7)
    stripes = np.zeros((48, 48, 3), np.uint8)
    stripes[::4] = (230, 40, 30)
    Image.fromarray(stripes).save(root / "stripes.png")
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(root / "noise.png")
    return root, held_out


def held_out_costs(run, pixels, style=0):
    """The mean costs by name of the run's network on ``pixels`` (B, H, W, 3), each against itself as content."""
    import tensorflow as tf

    pixels = tf.constant(pixels)
    weights = tf.one_hot([style] * len(pixels), run.description.spec.styles)
    generated = run.net([pixels, weights], training=False)
    return {name: float(np.mean(value)) for name, value in run.objective.costs(generated, pixels, weights).items()}


@pytest.fixture(scope="module")
def trained(data, new_weights_file, tmp_path_factory):
    """A run of 100 steps on the photos with two styles, as ``command`` gives it: (run, held-out costs before
    training by style, held-out costs after by style, {step: total cost})."""
    from nst_tf.runs.training_run import TrainingRun

    root, held_out = data
    options = TrainConfig(iterations=100, learning_rate=LEARNING_RATE, **SMALL)
    images = list_training_images(root / "photos")
    out = tmp_path_factory.mktemp("trained") / "model"
    styles = [root / "stripes.png", root / "noise.png"]
    run = TrainingRun(options, StyleTransferConfig(), styles, images, new_weights_file, "avg", out)
    run.prepare()
    before = [held_out_costs(run, held_out, style) for style in range(2)]
    totals = {progress.step: progress.costs["total"] for progress in run.steps()}
    run.finish(export=False)  # the command's run exports (test_a_run_stopped_by_a_signal_...)
    return run, before, [held_out_costs(run, held_out, style) for style in range(2)], totals


@pytest.mark.parametrize("style", [0, 1])
def test_training_lowers_the_objective_on_held_out_images(trained, style):
    run, before, after, _ = trained
    assert after[style]["total"] < 0.3 * before[style]["total"], (before, after)
    assert run.steps_done == 100


@pytest.mark.parametrize("style", [0, 1])
def test_a_trained_network_gives_a_lower_style_cost_than_the_content_image(trained, data, style):
    run, _, after, _ = trained
    held_out = data[1]
    weights = np.eye(2, dtype=np.float32)[[style] * len(held_out)]
    content_alone = float(np.mean(run.objective.costs(held_out, held_out, weights)["style"]))
    assert after[style]["style"] < 0.5 * content_alone, (after, content_alone)


def test_the_saved_model_holds_both_styles_and_records_its_training(trained, data):
    run, _, _, _ = trained
    model = load_fast_model(run.folder.path)
    assert model.spec.styles == 2 and model.description.style_names == ("stripes.png", "noise.png")
    assert model.description.training["iterations"] == 100
    assert model.description.training["objective"]["beta"] == 40.0
    pixels = data[1][:1]
    stripes, noise = (np.asarray(model(pixels, name)) for name in ("stripes.png", "noise.png"))
    np.testing.assert_allclose(stripes, run.net([pixels, np.eye(2, dtype=np.float32)[:1]]), atol=1e-3)
    assert np.abs(stripes - noise).max() > 10


def test_a_pipeline_started_at_a_step_gives_the_unbroken_pipelines_batches(data):
    root, _ = data
    paths = list_training_images(root / "photos").paths
    unbroken = [batch.numpy() for batch in training_batches(paths, 32, 4, seed=5, steps=9)]
    resumed = [batch.numpy() for batch in training_batches(paths, 32, 4, seed=5, first_step=6, steps=3)]
    np.testing.assert_array_equal(np.stack(unbroken[6:]), np.stack(resumed))
    other_seed = next(iter(training_batches(paths, 32, 4, seed=6, steps=1))).numpy()
    assert not np.array_equal(unbroken[0], other_seed)
    assert len({batch.tobytes() for batch in unbroken}) == 9  # 36 crops of 24 photos: every batch its own


def test_each_step_trains_one_style_drawn_from_the_seed_and_step():
    drawn = [style_of_step(3, step, 2) for step in range(40)]
    assert drawn == [style_of_step(3, step, 2) for step in range(40)]
    assert set(drawn) == {0, 1} and drawn != [style_of_step(4, step, 2) for step in range(40)]
    assert {style_of_step(3, step, 1) for step in range(40)} == {0}


def command(data, weights, out, *extra):
    root, _ = data
    styles = [str(root / "stripes.png"), str(root / "noise.png")]
    argv = ["--style", *styles, "--content_dir", str(root / "photos"), "--output_dir", str(out)]
    return [*argv, "--model", str(weights), *SMALL_ARGS, *extra]


def run_main(argv):
    out, err = io.StringIO(), io.StringIO()
    return main(argv, out, err), out.getvalue(), err.getvalue()


def losses(text):
    """{step: total} of the command's progress lines."""
    return {int(m[1]): float(m[2]) for m in re.finditer(r"^step (\d+)/\d+: total ([^,]+),", text, re.M)}


def logged(folder):
    """{tag: [steps]} of the TensorBoard events under ``folder``."""
    import tensorflow as tf

    tags = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


@pytest.mark.parametrize(
    "signum, status, words", [(signal.SIGTERM, 143, "terminated (SIGTERM)"), (signal.SIGINT, 130, "interrupted")]
)
def test_a_run_stopped_by_a_signal_saves_a_checkpoint_and_resumes_on_the_unbroken_runs_losses(
    data, new_weights_file, tmp_path, trained, signum, status, words
):
    unbroken = trained[3]
    out = tmp_path / "model"
    argv = command(data, new_weights_file, out, "--iterations", "100000", "--log_every", "1")
    process = subprocess.Popen(
        [sys.executable, "-m", "nst_tf.train", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        seen = [process.stdout.readline() for _ in range(2)]
        process.send_signal(signum)
        rest, err = process.communicate(timeout=30)
    finally:
        process.kill()
        process.communicate()
    assert process.returncode == status, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    saved = int(re.search(r"the checkpoint of step (\d+) is saved", err)[1])
    assert words in err and 2 <= saved < 9, err
    before = losses("".join(seen) + rest)
    np.testing.assert_allclose([before[s] for s in sorted(before)], [unbroken[s] for s in sorted(before)], rtol=1e-4)
    if signum == signal.SIGINT:
        return  # Ctrl-C's checkpoint is written by the same path as SIGTERM's, whose resume follows

    logs = ["--log_dir", str(tmp_path / "logs"), "--sample_every", "3"]
    resumed, text, err = run_main(command(data, new_weights_file, out, "--iterations", "12", "--log_every", "1", *logs))
    assert resumed == 0 and f"resuming from the checkpoint of step {saved}" in err, err
    after = losses(text)
    assert {"fast_model.json", "weights.weights.h5", "saved_model", "model.tflite"} <= set(os.listdir(out))
    assert sorted(after) == list(range(saved + 1, 13))
    # Float32 results move in their last bits with the threads' scheduling on a busy machine, and a few training
    # steps amplify that to about 0.3% (seen under load; 1e-5 on a quiet one). A resume that lost Adam's moments
    # or took other batches would be far off.
    np.testing.assert_allclose([after[s] for s in after], [unbroken[s] for s in after], rtol=2e-2)
    assert logged(tmp_path / "logs") == {
        "cost/total": list(range(saved + 1, 13)),
        "cost/content": list(range(saved + 1, 13)),
        "cost/style": list(range(saved + 1, 13)),
        "images_per_second": list(range(saved + 1, 13)),
        "samples": [step for step in range(saved + 1, 13) if step % 3 == 0 or step == 12],
    }
    # Other settings are refused in one line, the checkpoints left as they are.
    refused, _, err = run_main(command(data, new_weights_file, out, "--iterations", "12", "--seed", "9"))
    assert refused == 2 and err.count("\n") == 1 and "other seed" in err, err


def _empty(folder):
    folder.mkdir()


def _no_images(folder):
    folder.mkdir()
    (folder / "notes.txt").write_text("not a photo")
    (folder / "data.png").write_bytes(b"not a PNG at all")


def _tiny_images(folder):
    folder.mkdir()
    for i in range(3):
        Image.fromarray(photo(i, MIN_CONTENT_SIDE - 1, 40)).save(folder / f"tiny{i}.png")


def _fifo_inside(folder):
    folder.mkdir()
    os.mkfifo(folder / "photo.png")


def _fifo_itself(folder):
    os.mkfifo(folder)


@pytest.mark.parametrize(
    "make, words",
    [
        (_empty, "holds no usable image: it is empty"),
        (_no_images, "its files: 2 not images"),
        (_tiny_images, f"its files: 3 under {MIN_CONTENT_SIDE} pixels a side"),
        (_fifo_inside, "its files: 1 not images"),
        (_fifo_itself, "is not a folder"),
        (lambda folder: None, "no such folder"),
    ],
)
def test_a_folder_that_cannot_be_trained_on_is_one_line_and_creates_nothing(
    data, new_weights_file, tmp_path, make, words
):
    make(tmp_path / "photos")
    argv = command(data, new_weights_file, tmp_path / "model", "--iterations", "2")
    argv[argv.index("--content_dir") + 1] = str(tmp_path / "photos")
    status, text, err = run_main(argv)
    assert status == 2 and text == "" and err.count("\n") == 1, err
    assert err.startswith("python -m nst_tf.train: error: --content_dir ") and words in err, err
    assert not (tmp_path / "model").exists()


def test_damaged_and_tiny_files_are_passed_over_with_a_count(tmp_path):
    folder = write_photos(tmp_path / "photos", 3)
    (folder / "cut.png").write_bytes((folder / "photo00.png").read_bytes()[:30])
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    Image.fromarray(photo(9, 8, 8)).save(folder / "icon.png")
    (folder / "readme.txt").write_text("photos")
    found = list_training_images(folder)
    assert [os.path.basename(p) for p in found.paths] == ["photo00.png", "photo01.png", "photo02.png"]
    assert found.skipped == {"damaged or unreadable": 2, f"under {MIN_CONTENT_SIDE} pixels a side": 1, "not images": 1}


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(iterations=0), "iterations must be a positive whole number"),
        (dict(image_size=16), "image_size must be a whole number of at least 32"),
        (dict(learning_rate=-1.0), "learning_rate must be above 0"),
        (dict(batch_size=2.5), "batch_size must be a positive whole number"),
        (dict(upsampling="bicubic"), "upsampling must be one of resize, transposed"),
        (dict(width=0.0), "width must be above 0"),
    ],
)
def test_training_options_out_of_range_are_refused_naming_the_option(fields, message):
    with pytest.raises(NSTError, match=message):
        TrainConfig(**fields)


def test_a_bad_command_line_is_refused_before_tensorflow_loads(data, new_weights_file, tmp_path):
    code = (
        "import json, sys\n"
        "from nst_tf.app.train_cli import main\n"
        "statuses = [main(argv) for argv in json.loads(sys.argv[1])]\n"
        "print(statuses, 'tensorflow' in sys.modules)\n"
    )
    bad = [
        command(data, new_weights_file, tmp_path / "m", "--iterations", "0"),
        command(data, new_weights_file, tmp_path / "m", "--upsampling", "cubic"),
        command(data, tmp_path / "missing.mat", tmp_path / "m"),
        command(data, new_weights_file, tmp_path / "m", "--style", str(tmp_path / "missing.png")),
    ]
    done = subprocess.run([sys.executable, "-c", code, json.dumps(bad)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[2, 2, 2, 2] False", done.stderr
    lines = done.stderr.splitlines()
    words = ["iterations must be", "--upsampling: invalid choice", "--model: ", "--style: image not found"]
    assert len(lines) == 4 and all(line.startswith("python -m nst_tf.train: error: ") for line in lines), lines
    assert all(word in line for word, line in zip(words, lines)), lines
    assert not (tmp_path / "m").exists()
