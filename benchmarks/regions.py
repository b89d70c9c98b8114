"""Styles by region: the step time of two masked styles against one unmasked style, whole and in tiles.

    python benchmarks/regions.py                # 400x300 whole and 1024x1024 in 512x512 tiles
    python benchmarks/regions.py --quick        # small sizes and small weights, a smoke run

Uses the full-size synthetic VGG-19 weights of bench.py (benchmarks/.cache/); ``--quick`` small ones. Writes
benchmarks/results/regions-<device>-<date>.json and .md. Each case times Adam steps of the course's objective
with one style image (``StyleTerm``) and of two style images masked to the two halves (``GuidedStyleTerm``),
in turn in one process (rounds interleaved, the median of each), after a first call that traces; the ratio is
masked over unmasked (the target: at most 1.15).
"""

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from bench import ensure_weights, machine  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf.plan.synthetic import write_vgg19_mat  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
SMALL_WEIGHTS = os.path.join(HERE, ".cache", "imagenet-vgg-verydeep-19-synthetic-small.mat")
DEFAULTS = nst_tf.StyleTransferConfig(seed=0, epochs=10**6, print_every=10**6)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    height: int
    width: int
    tile: int | None  # the tiles' side, or None for the whole image


def _images(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 50, (1, height, width, 3)).astype(np.float32) for _ in range(3)]


def _objectives(model, case):
    """(unmasked, masked) objectives of ``case``: one style, and two styles masked to the left and right halves."""
    content, style_a, style_b = _images(case.height, case.width)
    left = np.zeros((case.height, case.width), np.float32)
    left[:, : case.width // 2] = 1.0
    masked = [nst_tf.GuidedStyle(style_a, left), nst_tf.GuidedStyle(style_b, 1.0 - left)]

    def make(styles):
        if case.tile is None:
            return nst_tf.StyleCost(model, content, styles, DEFAULTS)
        return nst_tf.TiledStyleCost(model, content, styles, DEFAULTS, tile_size=case.tile)

    return make(style_a), make(masked)


def time_case(model, case, steps, rounds):
    """Median seconds per step of each objective, and the first costs (the tiled and whole ones agree)."""
    transfers = [nst_tf.StyleTransfer(objective, DEFAULTS) for objective in _objectives(model, case)]
    first = [float(transfer.costs()["total"]) for transfer in transfers]
    for transfer in transfers:
        transfer.step(1)  # traces
    times = [[], []]
    for _ in range(rounds):
        for i, transfer in enumerate(transfers):
            start = time.perf_counter()
            transfer.step(steps)
            times[i].append((time.perf_counter() - start) / steps)
    unmasked, masked = (statistics.median(t) for t in times)
    return {"unmasked_s": unmasked, "masked_s": masked, "ratio": masked / unmasked, "first_costs": first}


def markdown(result, command):
    lines = [
        f"# Styles by region: step time ({result['machine']['cpu']}, {result['date']})",
        "",
        f"`{command}`; Adam steps, median of {result['rounds']} rounds of {result['steps']} steps each.",
        "",
        "| case | one unmasked style | two masked styles | ratio |",
        "|---|---|---|---|",
    ]
    for name, row in result["cases"].items():
        lines.append(f"| {name} | {row['unmasked_s']:.3f} s | {row['masked_s']:.3f} s | {row['ratio']:.3f}x |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and weights: a smoke run")
    parser.add_argument("--steps", type=int, default=5, help="steps timed in each round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, interleaved (default: %(default)s)")
    args = parser.parse_args()
    if args.quick:
        if not os.path.exists(SMALL_WEIGHTS):
            write_vgg19_mat(SMALL_WEIGHTS, width_divisor=16, seed=0)
        weights = SMALL_WEIGHTS
        cases = [Case("64x48 whole", 48, 64, None), Case("128x128 in 64x64 tiles", 128, 128, 64)]
        steps, rounds = 2, 2
    else:
        weights = ensure_weights()
        cases = [Case("400x300 whole", 300, 400, None), Case("1024x1024 in 512x512 tiles", 1024, 1024, 512)]
        steps, rounds = args.steps, args.rounds
    model = nst_tf.load_vgg_model(weights)
    result = {
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "steps": steps,
        "rounds": rounds,
        "cases": {case.name: time_case(model, case, steps, rounds) for case in cases},
    }
    command = "python benchmarks/regions.py" + (" --quick" if args.quick else f" --steps {steps} --rounds {rounds}")
    text = markdown(result, command)
    if args.quick:  # a smoke run is printed, not kept among the results
        print(text)
        return 0
    stem = f"regions-{'gpu' if result['machine'].get('gpu') else 'cpu'}-{result['date']}"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, stem + ".json"), "w") as handle:
        json.dump(result, handle, indent=2)
    with open(os.path.join(RESULTS, stem + ".md"), "w") as handle:
        handle.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
