"""Large images: tiles against the whole image, a 4096x4096 step in tiles, coarse to fine against one size.

    nice -n 10 python benchmarks/large.py           # everything; about 50 minutes on 2 CPU cores
    python benchmarks/large.py --quick              # smaller sizes, a smoke run of every section

Uses the full-size synthetic VGG-19 weights of bench.py (benchmarks/.cache/). Writes
benchmarks/results/large-<device>-<date>.json and .md.

Sections:
  tiling      1024x1024: one Adam step for the whole image, tiles of 512x512 (2x2) and strips of 512x1024 (2),
              each with its forward passes run again and kept (keep_forward). Step times: five steps of each,
              taken in turn in one process; peak resident memory: each in a fresh process.
  huge        4096x4096 in the tiles plan_tiles picks for a 5 GiB budget, in a fresh process: time to build
              the cost (targets in tiles), to trace, the first and the second step; peak memory while
              building and while stepping.
  multiscale  1024x768, images/content.jpg and images/style.jpg: total cost against wall time for 200 Adam
              steps at full size, and for coarse to fine (256x192, 512x384, 1024x768; 100 steps at each
              earlier size, 80 at the last); when coarse to fine first reaches the cost of the 200 full-size steps.

Memory is the process's peak resident set (VmHWM) above what it held with the model loaded, reset
(/proc/self/clear_refs) before the part measured.
"""

import argparse
import dataclasses
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
from bench import ensure_weights, machine, peak_rss_bytes, reset_peak_rss, rss_bytes

import nst_tf
from nst_tf.plan.large_options import scale_sizes
from nst_tf.runs.coarse_to_fine import CoarseToFine
from nst_tf.plan.memory import plan_tiles
from nst_tf.objective.tiled import TiledStyleCost

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
DEFAULTS = nst_tf.StyleTransferConfig(seed=0)
LAYERS = [DEFAULTS.content_layer, *(name for name, _ in DEFAULTS.style_layers)]
GiB = 2**30


def random_images(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 50, (1, height, width, 3)).astype(np.float32) for _ in range(2)]


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# Children: one run each, in a fresh process ----------------------------------------------------


def _objective(model, content, style, tile):
    if tile is None:
        return nst_tf.StyleCost(model, content, style, DEFAULTS)
    return TiledStyleCost(model, content, style, DEFAULTS, tile_size=tile[:2], keep_forward=tile[2])


def child_step(height, width, tile, reps):
    """One size and tiling: build, trace, ``reps`` + 1 steps; prints one JSON line."""
    model = nst_tf.load_vgg_model(ensure_weights())
    content, style = random_images(height, width)
    baseline = rss_bytes()
    reset_peak_rss()
    start = time.perf_counter()
    objective = _objective(model, content, style, tile)
    transfer = nst_tf.StyleTransfer(objective)
    build = time.perf_counter() - start
    del content, style
    build_peak = peak_rss_bytes() - baseline
    reset_peak_rss()
    trace = timed(transfer._run_steps.get_concrete_function)
    first = timed(transfer.step)
    steps = [timed(transfer.step) for _ in range(reps)]
    print(
        json.dumps(
            {
                "size": f"{width}x{height}",
                "tile": None if tile is None else list(objective.tile_size),
                "keep_forward": getattr(objective, "keep_forward", None),
                "tiles": len(getattr(objective, "tiles", [None])),
                "margin": getattr(objective, "margin", None),
                "build_s": build,
                "trace_s": trace,
                "first_step_s": first,
                "steps_s": steps,
                "build_peak_above_loaded_model_mb": build_peak / 1e6,
                "step_peak_above_loaded_model_mb": (peak_rss_bytes() - baseline) / 1e6,
                "loaded_model_rss_mb": baseline / 1e6,
            }
        )
    )


def child_interleaved(height, width, tiles, rounds):
    """Every tiling in one process, one step of each in turn, ``rounds`` times; prints one JSON line.

    Steps taken in turn see the same machine: on a shared 2-core machine,
    fresh processes one after another measured the same step 1.6x apart.
    """
    model = nst_tf.load_vgg_model(ensure_weights())
    content, style = random_images(height, width)
    transfers = {_tile_arg(tile): nst_tf.StyleTransfer(_objective(model, content, style, tile)) for tile in tiles}
    for transfer in transfers.values():
        transfer.step()
    times = {key: [] for key in transfers}
    for _ in range(rounds):
        for key, transfer in transfers.items():
            times[key].append(timed(transfer.step))
    print(json.dumps(times))


def run_child(args, timeout):
    command = [sys.executable, __file__, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _tile_arg(tile):
    """ "none", "RxC", or "RxC+keep" for a ``(rows, columns, keep_forward)`` tile."""
    if tile is None:
        return "none"
    return "x".join(map(str, tile[:2])) + ("+keep" if tile[2] else "")


def _parse_tile(text):
    sides, _, keep = text.partition("+")
    return None if sides == "none" else (*map(int, sides.split("x")), keep == "keep")


# Sections -------------------------------------------------------------------------------------


def section_tiling(size, tiles, rounds):
    height, width = size
    keys = [_tile_arg(tile) for tile in tiles]
    print(f"  tiling {width}x{height}: steps in turn, {rounds} rounds ...", file=sys.stderr)
    args = ["--child-interleaved", f"{width}x{height}", "--tile", ",".join(keys), "--reps", str(rounds)]
    times = run_child(args, timeout=3600)
    rows = []
    for key in keys:
        print(f"  tiling {width}x{height} tile {key}: memory in a fresh process ...", file=sys.stderr)
        found = run_child(["--child-step", f"{width}x{height}", "--tile", key, "--reps", "1"], timeout=1800)
        rows.append(
            {
                "tile": key,
                "keep_forward": found["keep_forward"],
                "tiles": found["tiles"],
                "margin": found["margin"],
                "median_step_s": statistics.median(times[key]),
                "steps_s": times[key],
                "fresh_process_steps_s": found["steps_s"],
                "step_peak_above_loaded_model_mb": found["step_peak_above_loaded_model_mb"],
                "build_peak_above_loaded_model_mb": found["build_peak_above_loaded_model_mb"],
            }
        )
    whole = rows[0]["median_step_s"]
    for row in rows:
        row["step_time_over_whole"] = row["median_step_s"] / whole
    return {"size": f"{width}x{height}", "rounds": rounds, "rows": rows}


def section_huge(size, budget, reps):
    height, width = size
    plan = plan_tiles(height, width, LAYERS, max_memory=budget)
    tile = (*plan.tile_size, plan.keep_forward)
    print(f"  {width}x{height} in tiles of {_tile_arg(tile)} ...", file=sys.stderr)
    args = ["--child-step", f"{width}x{height}", "--tile", _tile_arg(tile), "--reps", str(reps)]
    result = run_child(args, timeout=3 * 3600)
    result["budget_gib"] = budget / GiB
    return result


def section_multiscale(size, epochs, scales, scale_epochs, final_epochs, every):
    height, width = size
    model = nst_tf.load_vgg_model(ensure_weights())
    content_pixels = nst_tf.read_image(os.path.join(ROOT, "images", "content.jpg"))
    style_pixels = nst_tf.read_image(os.path.join(ROOT, "images", "style.jpg"))

    print(f"  plain {width}x{height}, {epochs} steps ...", file=sys.stderr)
    config = dataclasses.replace(DEFAULTS, epochs=epochs, print_every=every)
    start = time.perf_counter()
    content = nst_tf.reshape_and_normalize_image(nst_tf.fit_image(content_pixels, width, height))
    style = nst_tf.reshape_and_normalize_image(nst_tf.fit_image(style_pixels, width, height))
    plain = [
        {"seconds": time.perf_counter() - start, "iteration": p.iteration, "total_cost": p.total_cost}
        for p in nst_tf.stylize(model, content, style, config)
    ]
    target, plain_seconds = plain[-1]["total_cost"], plain[-1]["seconds"]

    sizes = scale_sizes(height, width, scales)
    print(f"  coarse to fine {sizes}, {scale_epochs} steps before the last size ...", file=sys.stderr)
    start = time.perf_counter()
    final = dataclasses.replace(config, epochs=final_epochs)
    run = CoarseToFine(model, content_pixels, style_pixels, final, sizes, scale_epochs=scale_epochs)
    c2f = []
    for p in run.run():
        c2f.append(
            {
                "seconds": time.perf_counter() - start,
                "scale": p.scale,
                "size": f"{p.width}x{p.height}",
                "iteration": p.item.iteration,
                "total_cost": p.item.total_cost,
            }
        )
    reached = next((p for p in c2f if p["scale"] == scales and p["total_cost"] <= target), None)
    return {
        "size": f"{width}x{height}",
        "sizes": [f"{w}x{h}" for h, w in sizes],
        "epochs": epochs,
        "scale_epochs": scale_epochs,
        "final_epochs": final_epochs,
        "print_every": every,
        "plain": plain,
        "coarse_to_fine": c2f,
        "plain_final_cost": target,
        "plain_seconds": plain_seconds,
        "coarse_to_fine_reached": reached,
        "time_ratio": None if reached is None else reached["seconds"] / plain_seconds,
    }


# Report ---------------------------------------------------------------------------------------


def markdown(result, command):
    m = result["machine"]
    lines = [
        f"# nst_tf large-image benchmark, {result['date']}",
        "",
        (
            f"Machine: {m['cpu']} (flags: {', '.join(m.get('cpu_flags', [])) or 'unknown'}), {m['cpu_cores']} "
            f"cores, {m['memory_gib']} GiB; GPU: {m['gpu'] or 'none'}; Python {m['python']}, TensorFlow "
            f"{m['tensorflow']}, nst_tf {m['nst_tf']}."
        ),
        (
            f"Command: `{command}`. Full-size synthetic VGG-19 weights, float32, Adam; memory is the peak resident "
            "set above the process's size with the model loaded."
        ),
        "",
    ]
    t = result.get("tiling")
    if t:
        lines += [
            f"## Whole image against tiles at {t['size']}",
            "",
            (
                f"Step time: the median of {t['rounds']} steps of each, taken in turn in one process (after one "
                "untimed step each). Memory: one fresh process each. keep_forward: every tile's forward pass kept "
                "for the backward one (otherwise run again)."
            ),
            "",
            "| tiles (core) | count | margin | keep_forward | step (s) | x whole | peak while stepping (MB) "
            "| peak while building (MB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in t["rows"]:
            keep = "-" if r["keep_forward"] is None else ("yes" if r["keep_forward"] else "no")
            lines.append(
                f"| {r['tile'].split('+')[0]} | {r['tiles']} | {r['margin'] or '-'} | {keep} | "
                f"{r['median_step_s']:.2f} | {r['step_time_over_whole']:.2f} | "
                f"{r['step_peak_above_loaded_model_mb']:.0f} | {r['build_peak_above_loaded_model_mb']:.0f} |"
            )
        lines.append("")
    h = result.get("huge")
    if h:
        lines += [
            f"## One Adam step at {h['size']} in tiles (plan_tiles for a {h['budget_gib']:g} GiB budget)",
            "",
            f"Tiles of {h['tile'][0]}x{h['tile'][1]} pixels plus a {h['margin']}-pixel margin: {h['tiles']} tiles. "
            f"Building the cost (content target and style Gram matrices in tiles): {h['build_s']:.0f} s, "
            f"peak {h['build_peak_above_loaded_model_mb']:.0f} MB. Tracing: {h['trace_s']:.0f} s. First step: "
            f"{h['first_step_s']:.0f} s"
            + (f"; next step{'s' if len(h['steps_s']) > 1 else ''}: " + ", ".join(f"{s:.0f} s" for s in h["steps_s"]))
            + f". Peak while stepping: **{h['step_peak_above_loaded_model_mb']:.0f} MB** "
            f"(process with the model loaded: {h['loaded_model_rss_mb']:.0f} MB).",
            "",
        ]
    ms = result.get("multiscale")
    if ms:
        lines += [
            f"## Coarse to fine against one size at {ms['size']}",
            "",
            (
                f"One size: {ms['epochs']} Adam steps at {ms['size']}. Coarse to fine: {' -> '.join(ms['sizes'])}, "
                f"{ms['scale_epochs']} steps at each earlier size, then {ms['final_epochs']} at {ms['size']}. "
                "Costs reported every "
                f"{ms['print_every']} iterations (a report costs one forward pass, in both runs); wall time from "
                "the start, building and tracing included."
            ),
            "",
            "| run | size | iteration | wall time (s) | total cost |",
            "|---|---|---|---|---|",
        ]
        for p in ms["plain"]:
            if p["iteration"] % 50 == 0 or p is ms["plain"][-1]:
                lines.append(
                    f"| one size | {ms['size']} | {p['iteration']} | {p['seconds']:.0f} | {p['total_cost']:.4g} |"
                )
        shown = [
            p
            for p in ms["coarse_to_fine"]
            if p["scale"] < len(ms["sizes"]) and p["iteration"] == ms["scale_epochs"] - 1
        ]
        shown += [p for p in ms["coarse_to_fine"] if p["scale"] == len(ms["sizes"])]
        for p in shown:
            lines.append(
                f"| coarse to fine | {p['size']} | {p['iteration']} | {p['seconds']:.0f} | {p['total_cost']:.4g} |"
            )
        reached = ms["coarse_to_fine_reached"]
        lines.append("")
        if reached:
            lines.append(
                f"Coarse to fine reaches the one-size run's final cost ({ms['plain_final_cost']:.4g} after "
                f"{ms['epochs']} steps, {ms['plain_seconds']:.0f} s) at iteration {reached['iteration']} of the last "
                f"size, after {reached['seconds']:.0f} s: **{ms['time_ratio']:.2f}** of the time."
            )
        else:
            lines.append(f"Coarse to fine did not reach the one-size run's final cost ({ms['plain_final_cost']:.4g}).")
        lines.append("")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every section")
    parser.add_argument("--sections", default="tiling,huge,multiscale")
    parser.add_argument("--child-step", metavar="WxH")
    parser.add_argument("--child-interleaved", metavar="WxH")
    parser.add_argument(
        "--tile", default="none", help="none, RxC or RxC+keep (keep_forward); comma-separated for --child-interleaved"
    )
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args()
    if args.child_step:
        width, height = map(int, args.child_step.split("x"))
        return child_step(height, width, _parse_tile(args.tile), args.reps)
    if args.child_interleaved:
        width, height = map(int, args.child_interleaved.split("x"))
        return child_interleaved(height, width, [_parse_tile(t) for t in args.tile.split(",")], args.reps)

    quick = args.quick
    sections = args.sections.split(",")
    result = {"date": datetime.date.today().isoformat(), "machine": machine()}
    if "tiling" in sections:
        print("tiling ...", file=sys.stderr)
        size, tiles = ((256, 256), [128, 256]) if quick else ((1024, 1024), [512, 1024])
        rows = tiles[0]
        tiles = [None] + [(rows, cols, keep) for keep in (False, True) for cols in tiles]
        result["tiling"] = section_tiling(size, tiles, rounds=2 if quick else 5)
    if "huge" in sections:
        print("huge ...", file=sys.stderr)
        result["huge"] = (
            section_huge((512, 512), budget=int(0.6 * GiB), reps=1) if quick else section_huge((4096, 4096), 5 * GiB, 1)
        )
    if "multiscale" in sections:
        print("multiscale ...", file=sys.stderr)
        result["multiscale"] = (
            section_multiscale((192, 256), epochs=20, scales=2, scale_epochs=10, final_epochs=20, every=5)
            if quick
            else section_multiscale((768, 1024), epochs=200, scales=3, scale_epochs=100, final_epochs=80, every=5)
        )
    os.makedirs(RESULTS, exist_ok=True)
    gpu = result["machine"]["gpu"]
    stem = os.path.join(RESULTS, f"large-{(gpu or 'cpu').lower().replace(' ', '-')}-{result['date']}")
    stem += "-quick" if quick else ""
    command = "nice -n 10 python benchmarks/large.py" + (" --quick" if quick else "")
    if args.sections != parser.get_default("sections"):
        stem += "-" + args.sections.replace(",", "-")
        command += f" --sections {args.sections}"
    with open(stem + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
    report = markdown(result, command)
    with open(stem + ".md", "w") as handle:
        handle.write(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
