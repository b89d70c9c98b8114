"""The command's iteration time at 400x300 against a bare tf.nn step, measured in one run.

    python benchmarks/command.py                      # float32, 20 and 60 iterations, 3 rounds
    python benchmarks/command.py --precision auto     # the precision "auto" picks on this machine

``python -m nst_tf`` runs the course's job (the first edition, full-size synthetic VGG-19 weights in
benchmarks/.cache, as bench.py writes them) for ``--short`` and ``--long`` iterations; the
difference of the two wall times over the difference of the iteration counts is the command's time
per iteration, with everything a run does between steps (reports, the progress line, the images
saved every 20 iterations) and without its start-up (imports, reading the weights, tracing). In
the same rounds, this process times single steps of bench.py's bare tf.nn step (fused Adam, the
same costs): the ceiling. Rounds alternate the three, so each ratio sees the same machine. Writes
benchmarks/results/command-<device>-<date>-<precision>.json and .md.
"""

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402  (its weights, bare step, machine description and results folder)
import nst_tf  # noqa: E402
from nst_tf.tensors.precision import compute_dtype, resolve  # noqa: E402


def command_seconds(folder, weights, iterations, precision):
    """Wall time of one ``python -m nst_tf`` run of ``iterations`` iterations."""
    argv = [
        sys.executable, "-m", "nst_tf",
        "--content_image_filename", os.path.join(folder, "content.png"),
        "--style_image_filename", os.path.join(folder, "style.png"),
        "--model", weights, "--output_dir", os.path.join(folder, f"out-{iterations}"),
        "--epochs", str(iterations), "--precision", precision, "--seed", "0",
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="float32", help="float32, bf16, fp16 or auto")
    parser.add_argument("--short", type=int, default=20)
    parser.add_argument("--long", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    precision = resolve(args.precision)
    weights_path = bench.ensure_weights()
    weights = nst_tf.read_vgg19_mat(weights_path)
    content, style = bench.images(300, 400)
    bare = bench.BareStep(weights, content, style, compute_dtype=compute_dtype(precision))
    bare(2)  # trace and warm up
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        for name in ("content", "style"):
            pixels = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"{name}.png"))
        rows = []
        for _ in range(args.rounds):
            short = command_seconds(folder, weights_path, args.short, args.precision)
            long = command_seconds(folder, weights_path, args.long, args.precision)
            bare_step = statistics.median(bench.timed(bare) for _ in range(10))
            per_iteration = (long - short) / (args.long - args.short)
            rows.append(dict(short_s=short, long_s=long, command_iteration_s=per_iteration, bare_step_s=bare_step))
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": bench.machine(),
        "precision": args.precision,
        "resolved_precision": precision,
        "iterations": [args.short, args.long],
        "rounds": rows,
        "ratio_median": statistics.median(r["command_iteration_s"] / r["bare_step_s"] for r in rows),
    }
    command = f"python benchmarks/command.py --precision {args.precision}"
    lines = [
        f"# The command against a bare tf.nn step, 400x300, {args.precision} ({precision})",
        "",
        f"{result['machine']['cpu']}, {result['machine']['cpu_cores']} cores, TensorFlow "
        f"{result['machine']['tensorflow']}; `{command}`, {result['date']}.",
        "",
        f"| round | {args.short} iterations (s) | {args.long} iterations (s) | command per iteration (s) | "
        "bare step (s) | ratio |",
        "|---|---|---|---|---|---|",
        *(
            f"| {i + 1} | {r['short_s']:.2f} | {r['long_s']:.2f} | {r['command_iteration_s']:.3f} | "
            f"{r['bare_step_s']:.3f} | {r['command_iteration_s'] / r['bare_step_s']:.2f} |"
            for i, r in enumerate(rows)
        ),
        "",
        f"Median ratio: **{result['ratio_median']:.2f}**.",
    ]
    bench.save_results(f"command-{bench.device_label()}-{result['date']}-{args.precision}", result, "\n".join(lines))


if __name__ == "__main__":
    main()
