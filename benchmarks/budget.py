"""Is ``--max_memory`` a promise about the whole process? Peak resident memory of real runs against it.

    python benchmarks/budget.py            # full-size synthetic weights
    python benchmarks/budget.py --quick    # fewer cases

Measures, each in a fresh process: Python with TensorFlow's runtime started (what
``large/memory.py``'s PROCESS_BYTES stands for); the peak of a forward pass per pixel of its input
(``Network.forward_pixel_bytes``: the style targets); and for each case, the command
``python -m nst_tf --max_memory B ...`` run to 2 iterations with its peak resident size (the
child's own VmHWM) against B, with whether it was tiled. Writes
benchmarks/results/budget-<device>-<date>.json and .md.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import bench  # noqa: E402

MiB = 2**20

RUNTIME_CHILD = """
import numpy, scipy.io, PIL.Image
import tensorflow as tf
tf.constant(0.0).numpy()
print(next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""

FORWARD_CHILD = """
import sys
import numpy as np
import nst_tf
side = int(sys.argv[1])
model = nst_tf.load_vgg_model(sys.argv[2])
small = np.zeros((1, 64, 64, 3), np.float32)
nst_tf.StyleCost(model, small, small)
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
with open("/proc/self/status") as status:
    rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
nst_tf.StyleCost(model, small, np.zeros((1, side, side, 3), np.float32))
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print((hwm - rss) * 1024 / side**2)
"""


HIGH_WATER_CHILD = """
import sys
from nst_tf.app.cli import main
status = main(sys.argv[1:])
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")))
sys.exit(status)
"""


def child_output(code, *args):
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def run_case(folder, weights, case):
    """Runs the command for ``case`` and returns its peak resident size (bytes), status and notes."""
    width, height = case["size"]
    content = os.path.join(folder, "content.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(content)
    options = [
        *("--model", weights, "--content_image_filename", content, "--style_image_filename", content),
        *("--width", str(width), "--height", str(height), "--epochs", "2", "--print_every", "1"),
        *("--max_memory", case["budget"], "--output_dir", os.path.join(folder, "out"), *case.get("extra", [])),
    ]
    # The child's own high-water mark: ru_maxrss of a child started by vfork counts the parent's peak.
    done = subprocess.run([sys.executable, "-c", HIGH_WATER_CHILD, *options], capture_output=True, text=True)
    err = done.stderr
    return {
        **case,
        "status": done.returncode,
        # None: the child ended without printing its high-water mark (a crash: see last_line).
        "peak_mib": int(done.stdout.split()[-1]) / 1024 if done.stdout.split() else None,
        "tiled": "tiles of" in err,
        "last_line": err.strip().splitlines()[-1] if err.strip() else "",
    }


CASES = [
    {"size": (400, 300), "budget": "2G"},
    {"size": (1024, 1024), "budget": "2G"},
    {"size": (1024, 1024), "budget": "1800M"},
    {"size": (1024, 1024), "budget": "1500M"},
    {"size": (256, 192), "budget": "1200M", "extra": ["--style_scale", "4"]},
    {"size": (64, 48), "budget": "600M"},
    # Many small tiles: the per-tile share of the graph (Network.tile_bytes) dominates.
    {"size": (128, 96), "budget": "2G", "extra": ["--tile_size", "16"]},
    {"size": (512, 384), "budget": "1200M"},
]


def markdown(result, command):
    lines = [
        "# --max_memory against the whole process's peak resident memory",
        "",
        f"Machine: {result['machine']['cpu']}, TensorFlow {result['machine']['tensorflow']}. Command: `{command}`.",
        "",
        f"Python with TensorFlow's runtime started: {result['runtime_mib']:.0f} MiB peak. "
        f"A forward pass: {', '.join(f'{v:.0f} B a pixel at {k}' for k, v in result['forward_bytes'].items())}.",
        "",
        "| size | options | budget | peak | within | tiled | status | last line |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["cases"]:
        budget = _bytes(r["budget"]) / MiB
        peak = r["peak_mib"]
        within = "refused" if r["status"] == 2 else "crashed" if peak is None else "yes" if peak <= budget else "NO"
        shown = "-" if peak is None else f"{peak:.0f} MiB"
        tiled = "yes" if r["tiled"] else "no"
        lines.append(
            f"| {r['size'][0]}x{r['size'][1]} | {' '.join(r.get('extra', []))} | {r['budget']} | {shown} | {within} | "
            f"{tiled} | {r['status']} | {r['last_line']} |"
        )
    return "\n".join(lines) + "\n"


def _bytes(text):
    from nst_tf.plan.large_options import parse_bytes

    return parse_bytes(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases")
    parser.add_argument("--case", type=int, action="append", help="run only these cases (indices into CASES)")
    args = parser.parse_args()
    weights = bench.ensure_weights()
    result = {
        "machine": bench.machine(),
        "runtime_mib": child_output(RUNTIME_CHILD) / MiB,
        "forward_bytes": {f"{side}x{side}": child_output(FORWARD_CHILD, str(side), weights) for side in (512, 1024)},
    }
    with tempfile.TemporaryDirectory() as folder:
        cases = [CASES[i] for i in args.case] if args.case else CASES[2:] if args.quick else CASES
        result["cases"] = []
        for case in cases:
            result["cases"].append(run_case(folder, weights, case))
            print(result["cases"][-1], file=sys.stderr)
    suffix = "-cases-" + "-".join(map(str, args.case)) if args.case else "-quick" if args.quick else ""
    stem = f"budget-{bench.device_label()}-{datetime.date.today().isoformat()}{suffix}"
    with open(os.path.join(HERE, "results", stem + ".json"), "w") as handle:
        json.dump(result, handle, indent=2)
    command = "python benchmarks/budget.py " + " ".join(sys.argv[1:])
    with open(os.path.join(HERE, "results", stem + ".md"), "w") as handle:
        handle.write(markdown(result, command))
    print(markdown(result, command))


if __name__ == "__main__":
    main()
