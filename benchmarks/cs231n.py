"""CS231n's pipeline: SqueezeNet 1.1 against VGG-19 at CS231n's sizes, and the 200-iteration runs.

    python benchmarks/cs231n.py

Measures, on full-size synthetic weights in the real files' layouts (torchvision's zip .pth for
SqueezeNet, MatConvNet's .mat for VGG-19; the weights are random, so only times are meaningful):

- reading the SqueezeNet file (``read_network_weights``, median of 5, in this process);
- the step time (one Adam step of the whole objective, traced, median of the steps after the
  first call) of each network on a 192x256 image with CS231n's Starry Night settings (SqueezeNet) and
  the course's (VGG-19), measured in turn in one process;
- the command ``python -m nst_tf --preset cs231n_<run>`` end to end for each run (200 iterations,
  a 480x640 content image brought to 192x256, the style to the run's size), in a child process:
  wall time from start to exit, and the run's own seconds as its progress line reports them.

Writes benchmarks/results/cs231n-<device>-<date>.json and .md.
"""

import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

import bench  # noqa: E402  (VGG-19 weights, machine description)
import nst_tf  # noqa: E402
from nst_tf.plan.networks.network_registry import get_network  # noqa: E402
from nst_tf.runs.presets import PRESETS  # noqa: E402
from nst_tf.plan.weights.squeezenet_reader import write_squeezenet_weights  # noqa: E402
from nst_tf.plan.weights.reader_registry import read_network_weights  # noqa: E402
from nst_tf.tensors.modules import build_network  # noqa: E402

SQUEEZENET = os.path.join(HERE, ".cache", "squeezenet1_1-synthetic.pth")
RUNS = ("cs231n_composition_vii", "cs231n_scream", "cs231n_starry_night", "cs231n_feature_inversion")


def ensure_squeezenet():
    if not os.path.exists(SQUEEZENET):
        os.makedirs(os.path.dirname(SQUEEZENET), exist_ok=True)
        write_squeezenet_weights(SQUEEZENET, seed=0)
    return SQUEEZENET


def load_seconds(path, reps=5):
    network = get_network("squeezenet")
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        read_network_weights(network, path)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_seconds(config, weights_path, pooling, steps=20):
    """Median seconds of one traced Adam step of the whole objective on a 192x256 image."""
    network = get_network(config.network)
    model = build_network(network, read_network_weights(network, weights_path), pooling=pooling)
    rng = np.random.default_rng(0)
    content, style = (
        nst_tf.reshape_and_normalize_image(rng.integers(0, 256, (192, 256, 3)).astype(np.uint8), config.normalization)
        for _ in range(2)
    )
    transfer = nst_tf.StyleTransfer(nst_tf.StyleCost(model, content, style, config))
    transfer.step(1)  # traces
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        transfer.step(1)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def command_run(name, folder, weights_path):
    """Runs the preset's command to its end; (wall seconds, the run's own seconds, exit status)."""
    rng = np.random.default_rng(1)
    content, style = os.path.join(folder, "content.png"), os.path.join(folder, "style.png")
    Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 256, (600, 500, 3), dtype=np.uint8)).save(style)
    argv = ["--preset", name, "--model", weights_path, "--output_dir", os.path.join(folder, name)]
    argv += ["--content_image_filename", content, "--style_image_filename", style, "--seed", "0"]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nst_tf", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    elapsed = re.findall(r"(\d+)s elapsed", done.stderr)
    return wall, int(elapsed[-1]) if elapsed else None, done.returncode


def markdown(result):
    lines = [
        "# CS231n's pipeline: SqueezeNet 1.1 against VGG-19",
        "",
        f"Machine: {result['machine']['cpu']} ({result['machine']['cpu_cores']} cores), "
        f"TensorFlow {result['machine']['tensorflow']}. Command: `python benchmarks/cs231n.py`. "
        "Synthetic full-size weights (times only).",
        "",
        f"Reading torchvision's SqueezeNet file (5 MB): {result['load_s'] * 1000:.0f} ms (median of 5).",
        "",
        "| network | settings | step at 192x256 | ratio |",
        "|---|---|---|---|",
    ]
    squeeze, vgg = result["step_s"]["squeezenet"], result["step_s"]["vgg19"]
    lines.append(f"| SqueezeNet 1.1 | cs231n_starry_night | {squeeze * 1000:.1f} ms | 1 |")
    lines.append(f"| VGG-19 | first_edition | {vgg * 1000:.1f} ms | {vgg / squeeze:.1f} |")
    lines += ["", "| preset | 200 iterations (progress line) | command, start to exit | status |", "|---|---|---|---|"]
    for name, (wall, run, status) in result["commands"].items():
        lines.append(f"| {name} | {run} s | {wall:.1f} s | {status} |")
    return "\n".join(lines) + "\n"


def main():
    squeezenet = ensure_squeezenet()
    result = {"machine": bench.machine(), "load_s": load_seconds(squeezenet)}
    starry, course = PRESETS["cs231n_starry_night"].config, PRESETS["first_edition"].config
    result["step_s"] = {
        "squeezenet": step_seconds(starry, squeezenet, "max"),
        "vgg19": step_seconds(course, bench.ensure_weights(), "avg"),
    }
    tf.keras.backend.clear_session()
    with tempfile.TemporaryDirectory() as folder:
        result["commands"] = {name: command_run(name, folder, squeezenet) for name in RUNS}
    stem = f"cs231n-{bench.device_label()}-{datetime.date.today().isoformat()}"
    with open(os.path.join(HERE, "results", stem + ".json"), "w") as handle:
        json.dump(result, handle, indent=2)
    with open(os.path.join(HERE, "results", stem + ".md"), "w") as handle:
        handle.write(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
