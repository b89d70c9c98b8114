"""Many images: a shell loop of single runs (the users' workaround) against one many-image command.

    python benchmarks/many.py                                  # 8 images at 256x256, 20 iterations
    python benchmarks/many.py --iterations 200 --images 4 --single
    python benchmarks/many.py --ways loop,b1,ray1              # a subset of the ways below
    python benchmarks/many.py --precision bf16                 # every way in bfloat16 (fast on AMX CPUs only)

Ways: ``loop`` starts ``python -m nst_tf`` once per image; ``b1``, ``b2``, ``b4`` are one command
over the folder with ``--batch_size`` 1, 2, 4 (the local engine); ``ray1``, ``ray2`` the same
command with ``--engine ray --workers`` 1, 2 (a local Ray started by the command).

All stylize the same content images with the same style and settings, on full-size synthetic
VGG-19 weights (benchmarks/.cache/, written once). Reported per way: wall seconds, images per
hour, and (unless ``--single``) each image's optimization step time and its overhead beyond its
steps after the first batch, from the command's manifest at n and 2n iterations (an image after
the first batch takes o + n s: o = 2 t(n) - t(2n), s = (t(2n) - t(n)) / n, medians). Writes
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


#: The ways a folder can be stylized: extra options of the one command (None: the shell loop).
WAYS = {
    "loop": None,
    "b1": ["--batch_size", "1"],
    "b2": ["--batch_size", "2"],
    "b4": ["--batch_size", "4"],
    "ray1": ["--engine", "ray", "--workers", "1"],
    "ray2": ["--engine", "ray", "--workers", "2"],
}
LABELS = {
    "loop": "shell loop of `python -m nst_tf`, one image each",
    "b1": "one command, `--batch_size 1`",
    "b2": "one command, `--batch_size 2`",
    "b4": "one command, `--batch_size 4`",
    "ray1": "one command, `--engine ray --workers 1`",
    "ray2": "one command, `--engine ray --workers 2`",
}


def command(weights, content, style, output, iterations, precision):
    return [
        sys.executable, "-m", "nst_tf", "--model", weights, "--content_image_filename", content,
        "--style_image_filename", style, "--output_dir", output, "--width", "256", "--height", "256",
        "--epochs", str(iterations), "--print_every", str(iterations), "--seed", "0", "--precision", precision,
    ]  # fmt: skip


def timed(argv):
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr}")
    return time.perf_counter() - start


def write_images(folder, count):
    photos = os.path.join(folder, "photos")
    os.makedirs(photos)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(f"{photos}/{i:03d}.png")
    style = os.path.join(folder, "style.png")
    Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(style)
    return photos, style


def run_loop(weights, photos, style, folder, iterations, precision):
    walls = []
    for name in sorted(os.listdir(photos)):
        output = os.path.join(folder, f"loop-{name}")
        walls.append(timed(command(weights, os.path.join(photos, name), style, output, iterations, precision)))
    return {"wall_s": sum(walls), "later_image_s": statistics.median(walls[1:]) if len(walls) > 1 else None}


def run_command(way, weights, photos, style, folder, iterations, single, precision):
    """One way's wall time at ``iterations``, and unless ``single`` its per-image step and overhead."""
    result, seconds = {}, {}
    for n in (iterations,) if single else (iterations, 2 * iterations):
        output = os.path.join(folder, f"{way}-{n}")
        wall = timed(command(weights, photos, style, output, n, precision) + WAYS[way])
        with open(os.path.join(output, "manifest.jsonl")) as handle:
            seconds[n] = [json.loads(line)["seconds"] for line in handle.read().splitlines()[1:]]
        result.setdefault("wall_s", wall)
        result[f"per_image_s_at_{n}"] = seconds[n]
    batch = int(WAYS[way][1]) if way.startswith("b") else 1
    if len(seconds[iterations]) > batch:
        result["later_image_s"] = statistics.median(seconds[iterations][batch:])
    if not single and len(seconds[iterations]) > batch:
        # Images after the first batch: o + n s each (tracing is in the first batch's share).
        later = {n: statistics.median(v[batch:]) for n, v in seconds.items()}
        result["step_s"] = (later[2 * iterations] - later[iterations]) / iterations
        result["overhead_after_first_s"] = 2 * later[iterations] - later[2 * iterations]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated, from: " + ", ".join(WAYS))
    parser.add_argument("--single", action="store_true", help="one run per way (no step time or overhead)")
    parser.add_argument("--precision", default="float32", help="the command's --precision for every way")
    args = parser.parse_args()
    ways = args.ways.split(",")
    unknown = sorted(set(ways) - set(WAYS))
    if unknown:
        parser.error(f"unknown ways: {', '.join(unknown)}")
    weights = bench.ensure_weights()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        photos, style = write_images(folder, args.images)
        for way in ways:
            if way == "loop":
                results[way] = run_loop(weights, photos, style, folder, args.iterations, args.precision)
            else:
                results[way] = run_command(
                    way, weights, photos, style, folder, args.iterations, args.single, args.precision
                )
            print(way, json.dumps({k: v for k, v in results[way].items() if not k.startswith("per_image")}))
    write(
        {
            "machine": bench.machine(),
            "images": args.images,
            "iterations": args.iterations,
            "single": args.single,
            "precision": args.precision,
            "ways": results,
        }
    )


def row(way, result, n, reference):
    wall = result["wall_s"]
    ratio = "" if reference is None else f"{reference / wall:.2f}"
    later = result.get("later_image_s")
    later = "" if later is None else f"{3600 / later:.0f}"
    step = result.get("step_s")
    overhead = result.get("overhead_after_first_s")
    step = "" if step is None else f"{step:.3f} s"
    overhead = "" if overhead is None else f"{overhead:.2f} s"
    return f"| {LABELS[way]} | {wall:.1f} s | {3600 * n / wall:.0f} | {ratio} | {later} | {step} | {overhead} |"


def write(result):
    stem = f"many-{bench.device_label()}-{datetime.date.today().isoformat()}-{result['iterations']}"
    precision = result.get("precision", "float32")
    if precision != "float32":
        stem += f"-{precision}"
    if result["images"] != 8:
        stem += f"-{result['images']}images"
    if list(result["ways"]) != list(WAYS):
        stem += "-" + "-".join(result["ways"])  # a subset does not replace the whole table
    n, ways, machine = result["images"], result["ways"], result["machine"]
    reference = ways.get("loop", ways.get("b1", {})).get("wall_s")
    lines = [
        f"# Many images: {n} at 256x256, {result['iterations']} iterations each",
        "",
        f"Machine: {machine['cpu']} ({machine['cpu_cores']} cores), TensorFlow {machine['tensorflow']}. "
        f"Command: `python benchmarks/many.py --images {n} --iterations {result['iterations']} "
        f"--ways {','.join(ways)}{' --single' if result.get('single') else ''}"
        f"{'' if precision == 'float32' else ' --precision ' + precision}`. "
        "Synthetic full-size VGG-19 weights. Wall time includes each command's "
        "start, loading and tracing (and Ray's start). Images per hour after batch 1: from the median "
        "seconds of an image after the first batch (the loop: a command's wall time; one command: the "
        "manifest's seconds, its steps and the next image's start, not its save).",
        "",
        "| how | wall | images per hour | vs the first row | images per hour after batch 1 | step per image "
        "| overhead per image after batch 1 |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [row(way, value, n, reference) for way, value in ways.items()]
    bench.save_results(stem, result, "\n".join(lines))


if __name__ == "__main__":
    main()
