"""How long the command takes to stop after SIGINT, SIGTERM or SIGHUP, at every moment of a run.

    python benchmarks/signals.py            # full-size synthetic weights, 1024x1024 in tiles of 256
    python benchmarks/signals.py --quick    # small weights, 128x96 in tiles of 32

Starts the command once per delay, sends a signal that many seconds after the start (the
moments cover loading the modules, reading the weights, importing TensorFlow, building the
network and the targets, tracing the first step and the steps themselves), and measures the
time from the signal to the process's end, its exit status, its last line and whether the
latest image was saved. The promise: at most 3 s at any moment (docs/statuses-and-files.md, "Signals").
Writes benchmarks/results/signals-<device>-<date>.json and .md.
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import bench  # noqa: E402  (weights, machine description)
from nst_tf.plan.synthetic import write_vgg19_mat  # noqa: E402

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def command(folder, weights, size, tile):
    width, height = size
    rng = np.random.default_rng(0)
    for name in ("content.png", "style.png"):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(os.path.join(folder, name))
    return [
        sys.executable,
        "-m",
        "nst_tf",
        "--model",
        weights,
        "--content_image_filename",
        "content.png",
        "--style_image_filename",
        "style.png",
        "--width",
        str(width),
        "--height",
        str(height),
        "--tile_size",
        str(tile),
        "--epochs",
        "100000",
        "--print_every",
        "100000",
    ]


def stop_after(argv, folder, delay, signum):
    """Runs ``argv`` in ``folder``, sends ``signum`` after ``delay`` seconds; what happened."""
    output = os.path.join(folder, f"out-{delay:g}-{signum}")
    started = time.monotonic()
    process = subprocess.Popen([*argv, "--output_dir", output], cwd=folder, stderr=subprocess.PIPE, text=True)
    time.sleep(max(0.0, delay - (time.monotonic() - started)))
    sent = time.monotonic()
    process.send_signal(signum)
    _, err = process.communicate(timeout=600)
    lines = err.strip().splitlines()
    return {
        "delay_s": delay,
        "signal": signal.Signals(signum).name,
        "stop_s": time.monotonic() - sent,
        "status": process.returncode,
        "last_line": lines[-1] if lines else "",
        "traceback": "Traceback" in err,
        "saved": os.path.exists(os.path.join(output, "generated_image.jpg")),
    }


def markdown(result, command_line):
    rows = result["rows"]
    lines = [
        "# Time from a signal to the command's end",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cpu_cores']} cores. "
        f"Run: {result['run']}. Command: `{command_line}`.",
        "",
        f"Longest: {max(r['stop_s'] for r in rows):.2f} s (promise: 3 s).",
        "",
        "| signal after | signal | stopped in | status | image saved | last line |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['delay_s']:g} s | {r['signal']} | {r['stop_s']:.2f} s | {r['status']} | "
            f"{'yes' if r['saved'] else 'no'} | {r['last_line']}{' (traceback!)' if r['traceback'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small weights and image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.quick:
            weights = write_vgg19_mat(os.path.join(folder, "small.mat"), width_divisor=16)
            size, tile, delays = (128, 96), 32, (0.1, 0.5, 1, 2, 4, 8, 12)
        else:
            weights = bench.ensure_weights()
            size, tile, delays = (1024, 1024), 256, (0.1, 0.5, 1, 2, 3, 5, 8, 12, 20, 30, 45, 60)
        argv = command(folder, weights, size, tile)
        rows = []
        for i, delay in enumerate(delays):
            rows.append(stop_after(argv, folder, delay, SIGNALS[i % len(SIGNALS)]))
            print(rows[-1], file=sys.stderr)
    run = f"{size[0]}x{size[1]} in tiles of {tile}, " + ("small weights" if args.quick else "full-size weights")
    result = {"machine": bench.machine(), "run": run, "rows": rows}
    stem = f"signals-{bench.device_label()}-{datetime.date.today().isoformat()}" + ("-quick" if args.quick else "")
    with open(os.path.join(HERE, "results", stem + ".json"), "w") as handle:
        json.dump(result, handle, indent=2)
    command_line = "python benchmarks/signals.py " + " ".join(sys.argv[1:])
    with open(os.path.join(HERE, "results", stem + ".md"), "w") as handle:
        handle.write(markdown(result, command_line))
    print(markdown(result, command_line))


if __name__ == "__main__":
    main()
