"""Step time of this tree's nst_tf against an earlier revision's, timed in turn in one process.

    python benchmarks/compare_revisions.py --old d5ddb56            # 400x300 whole, 1024x1024 in tiles
    python benchmarks/compare_revisions.py --old d5ddb56 --quick    # fewer rounds, 512x512 tiles
    python benchmarks/compare_revisions.py --old d5ddb56 --quick --rounds 8    # 8 rounds of each

The earlier revision's package is extracted with ``git archive`` into a temporary folder as
``nst_tf_old`` and imported beside ``nst_tf``; both load the same full-size synthetic weights
(benchmarks/.cache, as bench.py writes them). Each variant builds an old and a new run on the same
images and config, takes one step of each to trace, then alternates single steps ``--rounds``
times: steps taken in turn see the same machine, so the ratio new/old is taken round by round and
its median reported. Writes benchmarks/results/compare-<device>-<date>.json and .md.

Variants: the 400x300 whole-image Adam step (bench.py's "step"), and 1024x1024 in two strips with
forward passes kept and in four 512x512 tiles with forward passes run again (benchmarks/large.py's "tiling").
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench  # noqa: E402  (its weights, machine description and results folder)
import nst_tf  # noqa: E402


def import_old(revision, folder):
    """The package as it was at ``revision``, imported as ``nst_tf_old``."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", revision, "nst_tf"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
    os.rename(os.path.join(folder, "nst_tf"), os.path.join(folder, "nst_tf_old"))
    for dirpath, _, files in os.walk(os.path.join(folder, "nst_tf_old")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                with open(path) as handle:
                    text = handle.read()
                with open(path, "w") as handle:
                    handle.write(re.sub(r"\bnst_tf\.", "nst_tf_old.", text))
    sys.path.insert(0, folder)
    import nst_tf_old

    return nst_tf_old


def build(package, weights, content, style, tile):
    """A ``StyleTransfer`` of ``package`` (old or new) on the images; ``tile``: None or (rows, cols, keep)."""
    model = package.load_vgg_model(weights)
    config = package.StyleTransferConfig(seed=0)
    if tile is None:
        objective = package.StyleCost(model, content, style, config)
    else:
        objective = package.TiledStyleCost(model, content, style, config, tile_size=tile[:2], keep_forward=tile[2])
    return package.StyleTransfer(objective)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _total(costs):
    """The total cost, from costs by name or from an older revision's (total, content, style, tv) tuple."""
    return costs["total"] if isinstance(costs, dict) else costs[0]


def compare(old, weights, size, tile, rounds):
    height, width = size
    rng = np.random.default_rng(0)
    content, style = (rng.normal(0, 50, (1, height, width, 3)).astype(np.float32) for _ in range(2))
    runs = {"old": build(old, weights, content, style, tile), "new": build(nst_tf, weights, content, style, tile)}
    first = {key: _total(run.costs()) for key, run in runs.items()}
    assert np.isclose(first["old"], first["new"], rtol=1e-5), first
    for run in runs.values():
        run.step()  # traces
    times = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            times[key].append(timed(run.step))
    ratios = [new / old for new, old in zip(times["new"], times["old"])]
    passes = "kept" if tile and tile[2] else "run again"
    label = "whole" if tile is None else f"tiles {tile[1]}x{tile[0]}, forward passes {passes}"
    return {
        "size": f"{width}x{height}",
        "variant": label,
        "rounds": rounds,
        "median_step_s": {key: statistics.median(t) for key, t in times.items()},
        "new_over_old": statistics.median(ratios),
        "ratios": ratios,
    }


def _machine_text(machine):
    return (
        f"{machine['cpu']} ({', '.join(machine['cpu_flags'])}), {machine['cpu_cores']} cores, "
        f"TensorFlow {machine['tensorflow']}" + (f", oneDNN {machine['onednn']}" if machine["onednn"] else "")
    )


def markdown(result, command):
    lines = [
        f"# nst_tf {result['new']} against {result['old']}: one step, timed in turn in one process",
        "",
        f"Machine: {_machine_text(result['machine'])}. Command: `{command}`.",
        "",
        "| size | variant | rounds | old step | new step | new / old (median of rounds) |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        steps = row["median_step_s"]
        lines.append(
            f"| {row['size']} | {row['variant']} | {row['rounds']} | {steps['old']:.3f} s | {steps['new']:.3f} s "
            f"| {row['new_over_old']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="the earlier revision (a commit, tag or branch)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds; tiles at 512x512")
    parser.add_argument("--rounds", type=int, help="rounds of every variant (default: 15 whole, 4 tiled; --quick 5, 2)")
    args = parser.parse_args()
    weights = bench.ensure_weights()
    variants = [((300, 400), None, args.rounds or (5 if args.quick else 15))]
    big = 512 if args.quick else 1024
    variants += [((big, big), (big // 2, big, True), args.rounds or (2 if args.quick else 4))]
    variants += [((big, big), (big // 2, big // 2, False), args.rounds or (2 if args.quick else 4))]
    with tempfile.TemporaryDirectory() as folder:
        old = import_old(args.old, folder)
        rows = []
        for size, tile, rounds in variants:
            print(f"  {size[1]}x{size[0]} {tile} ...", file=sys.stderr)
            rows.append(compare(old, weights, size, tile, rounds))
    new = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True)
    result = {"old": args.old, "new": new.stdout.strip(), "machine": bench.machine(), "rows": rows}
    stem = f"compare-{bench.device_label()}-{datetime.date.today().isoformat()}"
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", stem + ".json"), "w") as handle:
        json.dump(result, handle, indent=2)
    command = "python benchmarks/compare_revisions.py " + " ".join(sys.argv[1:])
    with open(os.path.join(HERE, "results", stem + ".md"), "w") as handle:
        handle.write(markdown(result, command))
    print(markdown(result, command))


if __name__ == "__main__":
    main()
