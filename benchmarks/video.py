"""Video: seconds per frame with and without the temporal term, the share spent on optical flow, and the
warp error between consecutive output frames.

    python benchmarks/video.py                                   # 256x144 and 400x300 at 20 iterations
    python benchmarks/video.py --sizes 256x144 --iterations 200 --frames 4
    python benchmarks/video.py --sizes 256x144 --weights 0,1e3,1e4,1e5 --style images/style.jpg

A synthetic clip (a smooth random texture moving ``--step`` pixels left per frame, so the true flow is
known) is stylized in this process with ``nst_tf.runs.video_frames.stylize_video`` on full-size synthetic
VGG-19 weights (benchmarks/.cache/), once with ``--temporal_weight 0`` and once with the default
weight (or each of ``--weights``), each at the given iterations per frame (the first frame runs
twice as many, and traces). The style is the clip's texture mirrored, or ``--style``. Reported per
size, iterations and weight:

- seconds per frame: the median over the frames after the first;
- flow seconds per frame: the two DIS flows and the consistency weights of a frame, timed on their
  own over the same frames (median), and their share of a frame's seconds;
- warp error: the mean squared difference, in 0-255 pixel values, between each output frame and the
  one before moved by the known motion (lower is steadier); the weights are synthetic, so the
  styles are noise-like textures, not a real network's;
- style cost: the median over the frames after the first of their final style cost, as a multiple
  of the same without the temporal term (what the steadiness costs the style).

Writes benchmarks/results/video-<device>-<date>.json and .md.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import bench  # noqa: E402  (weights, machine description)
import nst_tf  # noqa: E402
from nst_tf.runs.many_images import Finished  # noqa: E402
from nst_tf.tensors.flow import consistency_weights, flow_between  # noqa: E402
from nst_tf.plan.video_options import VideoOptions  # noqa: E402
from nst_tf.runs.video_frames import stylize_video  # noqa: E402

DEFAULT_WEIGHT = VideoOptions().temporal_weight


def clip(count, height, width, step):
    """``count`` frames of a smooth random texture moving ``step`` pixels left per frame, uint8."""
    noise = np.random.default_rng(0).normal(0, 1, (height, width + step * count, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 3.0)
    big = ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)
    return [big[:, step * i : step * i + width] for i in range(count)]


def warp_error(images, step):
    """Mean squared difference (0-255) between each frame and the one before moved ``step`` pixels left."""
    return float(np.mean([np.mean((b[:, :-step] - a[:, step:]) ** 2) for a, b in zip(images, images[1:])]))


def flow_seconds(frames):
    """Median seconds of one frame's flow work: both DIS flows and the consistency weights."""
    times = []
    for previous, current in zip(frames, frames[1:]):
        start = time.perf_counter()
        consistency_weights(flow_between(current, previous), flow_between(previous, current))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(model, frames, style, iterations, weight, step):
    config = nst_tf.StyleTransferConfig(epochs=iterations, print_every=iterations, seed=0)
    seconds, images, styles = [], [], []
    for item in stylize_video(model, frames, style, config, VideoOptions(temporal_weight=weight)):
        if isinstance(item, Finished):
            seconds.append(item.seconds)
            styles.append(float(item.progress.style_cost))
            images.append(nst_tf.deprocess_image(item.progress.image).astype(np.float32))
    return {
        "weight": weight,
        "frame_s": statistics.median(seconds[1:]),
        "first_frame_s": seconds[0],
        "warp_error": warp_error(images, step),
        "style_cost": statistics.median(styles[1:]),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256x144,400x300", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--iterations", type=int, default=20, help="per frame after the first")
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--step", type=int, default=2, help="pixels the texture moves per frame")
    parser.add_argument("--weights", default=f"0,{DEFAULT_WEIGHT:g}", help="comma-separated temporal weights")
    parser.add_argument("--style", help="a style image (default: the clip's texture, mirrored)")
    args = parser.parse_args()
    model = nst_tf.VGG19(nst_tf.read_vgg19_mat(bench.ensure_weights()))
    rows = []
    for text in args.sizes.split(","):
        width, height = map(int, text.split("x"))
        frames = clip(args.frames, height, width, args.step)
        style = style_image(args.style, height, width)
        flow = flow_seconds(frames)
        for weight in sorted({0.0, *map(float, args.weights.split(","))}):
            row = {"size": text, "iterations": args.iterations, "flow_s": flow}
            row.update(run(model, frames, style, args.iterations, weight, args.step))
            rows.append(row)
            print(json.dumps(row), flush=True)
    write({"machine": bench.machine(), "frames": args.frames, "step": args.step, "rows": rows}, args)


def style_image(path, height, width):
    if path is None:
        return nst_tf.reshape_and_normalize_image(clip(1, height, width, 0)[0][:, ::-1].copy())
    return nst_tf.reshape_and_normalize_image(nst_tf.load_image(path, width, height))


def write(result, args):
    stem = f"video-{bench.device_label()}-{datetime.date.today().isoformat()}-{args.iterations}"
    if args.sizes != "256x144,400x300":
        stem += "-" + args.sizes.replace(",", "-")
    if args.style or args.weights != f"0,{DEFAULT_WEIGHT:g}":
        stem += "-weights"
    if args.style:
        stem += "-" + os.path.splitext(os.path.basename(args.style))[0]
    style = f" --style {args.style}" if args.style else ""
    machine = result["machine"]
    lines = [
        f"# Video: {result['frames']} frames, a texture moving {result['step']} pixels a frame",
        "",
        f"Machine: {machine['cpu']} ({machine['cpu_cores']} cores), TensorFlow {machine['tensorflow']}. Command: "
        f"`python benchmarks/video.py --sizes {args.sizes} --iterations {args.iterations} --frames {args.frames} "
        f"--weights {args.weights}{style}`. "
        "Synthetic full-size VGG-19 weights: times are real, the styles are not a real network's.",
        "",
        "| size | iterations | temporal weight | seconds per frame | flow per frame | flow share | warp error "
        "| style cost vs weight 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        alone = next(r for r in result["rows"] if r["size"] == row["size"] and r["weight"] == 0)
        lines.append(
            f"| {row['size']} | {row['iterations']} | {row['weight']:g} | {row['frame_s']:.2f} s | "
            f"{row['flow_s'] * 1000:.1f} ms | {100 * row['flow_s'] / row['frame_s']:.1f}% | {row['warp_error']:.1f} "
            f"| {row['style_cost'] / alone['style_cost']:.2f}x |"
        )
    bench.save_results(stem, result, "\n".join(lines))


if __name__ == "__main__":
    main()
