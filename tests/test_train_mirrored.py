"""Training on several devices: ``tf.distribute.MirroredStrategy`` over a CPU split into two logical devices
takes the steps one device takes. The split is made before TensorFlow starts, so the runs are in a subprocess."""

import json
import subprocess
import sys

import numpy as np
from PIL import Image

SCRIPT = """
import json, sys
import tensorflow as tf  # itself: nst_tf.tensors.quiet starts the devices before they can be split

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from nst_tf.plan.config import StyleTransferConfig
from nst_tf.plan.training_options import TrainConfig
from nst_tf.runs.training_run import TrainingRun
from nst_tf.runs.training_data import list_training_images

root, weights = sys.argv[1:3]
options = TrainConfig(iterations=3, image_size=32, batch_size=4, learning_rate=3e-2, width=0.25, blocks=1)
images = list_training_images(root + "/photos")
styles = [root + "/a.png", root + "/b.png"]
found = {}
two_devices = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
for name, strategy in (("one", tf.distribute.get_strategy()), ("two", two_devices)):
    run = TrainingRun(options, StyleTransferConfig(), styles, images, weights, "avg", f"{root}/{name}", strategy)
    run.prepare()
    costs = [progress.costs for progress in run.steps()]
    found[name] = {
        "replicas": strategy.num_replicas_in_sync,
        "costs": costs,
        "stylized": run.samples(2).astype(float).tolist(),
    }
print(json.dumps(found))
"""


def test_two_devices_take_the_steps_of_one_within_float32_rounding(tmp_path, new_weights_file):
    rng = np.random.default_rng(4)
    (tmp_path / "photos").mkdir()
    for i in range(12):
        y, x = np.mgrid[0:40, 0:40]
        pixels = np.stack([x * (i + 2), y * 3 + i, (x + y) * 2], axis=2) + rng.normal(0, 10, (40, 40, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(tmp_path / "photos" / f"p{i:02d}.png")
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(new_weights_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    one, two = found["one"], found["two"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert len(one["costs"]) == len(two["costs"]) == 3
    for costs_one, costs_two in zip(one["costs"], two["costs"]):
        assert costs_one.keys() == costs_two.keys() == {"total", "content", "style"}
        for name in costs_one:
            np.testing.assert_allclose(costs_two[name], costs_one[name], rtol=1e-4, err_msg=name)
    assert one["costs"][2]["total"] != one["costs"][0]["total"]  # the network did change between the steps
    # The trained networks stylize alike.
    np.testing.assert_allclose(two["stylized"], one["stylized"], atol=1.0)
    assert np.ptp(one["stylized"]) > 50
