"""Many images: a shell loop of single runs (the users' workaround) against one many-image command.

    python benchmarks/many.py                 # 8 images at 256x256, 20 iterations
    python benchmarks/many.py --iterations 200 --images 4

Local engine only, one image at a time (batches and Ray are not built yet).

Both stylize the same content images with the same style and settings, on full-size synthetic
VGG-19 weights (benchmarks/.cache/, written once): the loop starts ``python -m nst_tf`` once per
image; the many-image command takes the folder. Reported: wall seconds of each, images per hour,
and the per-image overhead beyond the optimization steps (each image's seconds minus its
iterations times the median step time), from the command's manifest. Writes
benchmarks/results/many-<device>-<date>-<iterations>.json and .md.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import bench  # noqa: E402  (weights, machine description)


def command(weights, content, style, output, iterations):
    return [
        sys.executable, "-m", "nst_tf", "--model", weights, "--content_image_filename", content,
        "--style_image_filename", style, "--output_dir", output, "--width", "256", "--height", "256",
        "--epochs", str(iterations), "--print_every", str(iterations), "--seed", "0",
    ]  # fmt: skip


def timed(argv):
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    weights = bench.ensure_weights()
    with tempfile.TemporaryDirectory() as folder:
        photos = os.path.join(folder, "photos")
        os.makedirs(photos)
        rng = np.random.default_rng(0)
        for i in range(args.images):
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(f"{photos}/{i:03d}.png")
        style = os.path.join(folder, "style.png")
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(style)
        loop = 0.0
        for name in sorted(os.listdir(photos)):
            output = os.path.join(folder, f"loop-{name}")
            loop += timed(command(weights, os.path.join(photos, name), style, output, args.iterations))
        many, per_image = {}, {}
        for iterations in (args.iterations, 2 * args.iterations):
            output = os.path.join(folder, f"many-{iterations}")
            many[iterations] = timed(command(weights, photos, style, output, iterations))
            with open(os.path.join(output, "manifest.jsonl")) as handle:
                per_image[iterations] = [json.loads(line)["seconds"] for line in handle.read().splitlines()[1:]]
    n = args.iterations
    # An image after the first takes o + n s (its overhead o, n steps of s seconds): o = 2 t(n) - t(2n).
    later = {k: statistics.median(v[1:]) for k, v in per_image.items()} if args.images > 1 else None
    result = {
        "machine": bench.machine(),
        "images": args.images,
        "iterations": n,
        "loop_s": loop,
        "many_s": many[n],
        "many_double_s": many[2 * n],
        "per_image_s": per_image[n],
        "first_image_s": per_image[n][0],
        "overhead_after_first_s": None if later is None else 2 * later[n] - later[2 * n],
        "step_s": None if later is None else (later[2 * n] - later[n]) / n,
    }
    write(result)


def write(result):
    stem = f"many-{bench.device_label()}-{datetime.date.today().isoformat()}-{result['iterations']}"
    with open(os.path.join(HERE, "results", stem + ".json"), "w") as handle:
        json.dump(result, handle, indent=2)
    n, loop, many = result["images"], result["loop_s"], result["many_s"]
    text = "\n".join(
        [
            f"# Many images: {n} at 256x256, {result['iterations']} iterations each",
            "",
            f"Machine: {result['machine']['cpu']} ({result['machine']['cpu_cores']} cores), TensorFlow "
            f"{result['machine']['tensorflow']}. Command: `python benchmarks/many.py --images {n} --iterations "
            f"{result['iterations']}`. Synthetic full-size VGG-19 weights.",
            "",
            "| how | wall | images per hour | ratio |",
            "|---|---|---|---|",
            f"| shell loop of `python -m nst_tf`, one image each | {loop:.1f} s | {3600 * n / loop:.0f} | 1 |",
            f"| one command over the folder | {many:.1f} s | {3600 * n / many:.0f} | {loop / many:.2f} |",
            "",
            f"In the command: the first image took {result['first_image_s']:.1f} s (tracing included); each later "
            f"one {result['overhead_after_first_s']:.3f} s beyond its steps (median; from the same command at twice "
            f"the iterations, {result['many_double_s']:.1f} s), a step {result['step_s']:.3f} s.",
        ]
    )
    with open(os.path.join(HERE, "results", stem + ".md"), "w") as handle:
        handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
