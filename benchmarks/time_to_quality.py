"""Time to the course's picture: the recipes users pick, run on the course's objective, to the cost the course's
own recipe reaches after its 200 iterations.

    python benchmarks/time_to_quality.py --content CONTENT.jpg --style STYLE.jpg --commands  # 400x300, all
    python benchmarks/time_to_quality.py --content C --style S --size 1600x1200 --stop_at_target --commands \
        --recipes fast lbfgs                                 # the course's, fast and the best rival at 400x300
    python benchmarks/time_to_quality.py --quick                                            # a smoke run

Every recipe optimizes the course's objective (its layers, normalizations, alpha 10 and beta 40) of the same
content and style images, fitted as the course fits them (centre-cropped to the size), each translated to the
course's pixel scale (0-255 with the means subtracted: a learning rate for [0, 1] pixels is multiplied by 255, an
epsilon divided by it, since the gradients there are 255 times larger). Every cost in the table is measured one way:
the course's cost of the image as it would be saved (clipped and rounded to 8 bits), in float64, outside the timed
part. The target is that cost of the course's recipe after its 200 iterations. For each recipe: the wall time and
the network evaluations (forward and backward passes; at a smaller scale counted also as full-size ones by pixels)
to reach the target, and the cost reached in the course's time. A recipe is checked every ``--check_every``
iterations of its last scale and stopped at its own end or after ``--cap`` times the course's time (with
``--stop_at_target``, at the target too). ``--commands`` also times the whole commands, start-up included:
``python -m nst_tf`` against ``python -m nst_tf --preset fast``, with the cost of each one's saved picture.
Costs come from synthetic weights unless ``--model`` names the real ones: a ranking on synthetic weights is to be
confirmed with real weights. The course's images are passed by path and never kept with the results.
"""

import argparse
import dataclasses
import datetime
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench import ensure_weights, machine, save_results  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf.plan.synthetic import write_vgg19_mat  # noqa: E402
from nst_tf.runs.coarse_to_fine import CoarseToFine  # noqa: E402
from nst_tf.runs.presets import PRESETS  # noqa: E402
from nst_tf.tensors.images import deprocess_image, fit_image, read_image, reshape_and_normalize_image  # noqa: E402
from nst_tf.tensors.quiet import tensorflow as tf  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL_WEIGHTS = os.path.join(HERE, ".cache", "imagenet-vgg-verydeep-19-synthetic-small.mat")
COURSE = nst_tf.StyleTransferConfig()
#: On [0, 1] pixels the gradient is 255 times the course's: Adam's rate scales up by 255 and its epsilon down.
PIXEL_SCALE = 255.0


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One recipe: ``config`` (``StyleTransferConfig`` fields over the course's objective), its ``scales`` (each a
    fraction of the output's sides, smallest first; the last 1.0), ``scale_epochs`` (iterations at each earlier
    scale), ``carry_state`` (Adam's moments carried across scales) and the nst_tf options that run it."""

    name: str
    source: str
    config: dict
    scales: tuple = (1.0,)
    scale_epochs: int | None = None
    carry_state: bool = False
    options: str = ""


def _sqrt2_scales(longer_side, first=128):
    """Fractions of the output for sides ``first``, ``first * sqrt(2)``, ... up to ``longer_side``."""
    count = max(1, math.ceil(math.log(longer_side / first, math.sqrt(2)) - 1e-9) + 1)
    return tuple(min(1.0, first * math.sqrt(2) ** k / longer_side) for k in range(count - 1)) + (1.0,)


def recipes(longer_side):
    """The recipes of the table, translated to the course's pixel scale and to an output of ``longer_side``."""
    tutorial_rate = 0.02 * PIXEL_SCALE
    return [
        Recipe("course", "the course: Adam(2.0) from the content blended 0.6 with noise", {}, options=""),
        Recipe(
            "lbfgs",
            "jcjohnson/neural-style: L-BFGS (history 100) from the content image, 1000 iterations",
            {"optimizer": "lbfgs", "lbfgs_history": 100, "start": "content", "epochs": 1000},
            options="--optimizer lbfgs --lbfgs_history 100 --start content -n 1000",
        ),
        Recipe(
            "lbfgs_multires",
            "neural-style's multi-resolution script: L-BFGS at half size, then full size from that result",
            {"optimizer": "lbfgs", "lbfgs_history": 100, "start": "content", "epochs": 1000},
            scales=(0.5, 1.0),
            scale_epochs=500,
            options="--optimizer lbfgs --lbfgs_history 100 --start content -n 1000 --scales 2 --scale_epochs 500",
        ),
        Recipe(
            "tf_tutorial",
            "the TensorFlow tutorial: Adam(0.02, beta_1 0.99, epsilon 0.1) on [0, 1] pixels, from the content image",
            {
                "learning_rate": tutorial_rate,
                "adam_beta_1": 0.99,
                "adam_epsilon": 0.1 / PIXEL_SCALE,
                "start": "content",
                "epochs": 1000,
            },
            options=f"--learning_rate {tutorial_rate:g} --adam_beta_1 0.99 --adam_epsilon {0.1 / PIXEL_SCALE:.4g} "
            "--start content -n 1000",
        ),
        Recipe(
            "crowsonkb",
            "crowsonkb/style-transfer-pytorch: Adam(0.02, 0.9/0.99) from the content image, sides from 128 px by "
            "sqrt(2), an average (0.99) of the iterates seeds each next scale, Adam's moments carried over",
            {
                "learning_rate": tutorial_rate,
                "adam_beta_2": 0.99,
                "start": "content",
                "average": 0.99,
                "epochs": 500,
            },
            scales=_sqrt2_scales(longer_side),
            scale_epochs=500,
            carry_state=True,
            options="library: CoarseToFine(..., sizes from 128 px by sqrt(2), scale_epochs=500, carry_state=True) "
            f"with StyleTransferConfig(learning_rate={tutorial_rate:g}, adam_beta_2=0.99, start='content', "
            "average=0.99)",
        ),
        Recipe(
            "gatys2017",
            "Gatys et al. 2017: L-BFGS, 500 iterations at half size, then 200 at full size from that result",
            {"optimizer": "lbfgs", "lbfgs_history": 100, "start": "content", "epochs": 200},
            scales=(0.5, 1.0),
            scale_epochs=500,
            options="--optimizer lbfgs --lbfgs_history 100 --start content -n 200 --scales 2 --scale_epochs 500",
        ),
    ]


def fast_recipe():
    """The ``fast`` preset as a recipe: its hyperparameters over the course's, its scales by halves."""
    fast = PRESETS["fast"]
    fields = {f.name: getattr(fast.config, f.name) for f in dataclasses.fields(COURSE)}
    config = {name: value for name, value in fields.items() if value != getattr(COURSE, name)}
    scales = tuple(0.5**k for k in range(fast.large.scales - 1, -1, -1))
    return Recipe(
        "fast",
        f"nst_tf's fast preset: {fast.summary}",
        config,
        scales,
        fast.large.scale_epochs,
        options="--preset fast",
    )


def candidates():
    """Recipes tried for ``fast`` (run by name with ``--recipes``; not in the table by default)."""
    return [
        Recipe(
            "try_lbfgs_2",
            "L-BFGS from the content, 60 at half size",
            {"optimizer": "lbfgs", "lbfgs_history": 100, "start": "content", "epochs": 1000},
            (0.5, 1.0),
            60,
        ),
        Recipe(
            "try_lbfgs_2b",
            "L-BFGS from the content, 30 at half size, history 20",
            {"optimizer": "lbfgs", "lbfgs_history": 20, "start": "content", "epochs": 1000},
            (0.5, 1.0),
            30,
        ),
        Recipe(
            "try_lbfgs_3",
            "L-BFGS from the content, 40 at quarter and half size",
            {"optimizer": "lbfgs", "lbfgs_history": 100, "start": "content", "epochs": 1000},
            (0.25, 0.5, 1.0),
            40,
        ),
        Recipe("try_adam_10", "Adam(10) from the content", {"learning_rate": 10.0, "start": "content", "epochs": 1000}),
        Recipe(
            "try_adam_10_avg",
            "Adam(10) from the content, average 0.9",
            {"learning_rate": 10.0, "start": "content", "epochs": 1000, "average": 0.9},
        ),
        Recipe(
            "try_adam_5_b99_2",
            "tutorial's Adam, 2 scales 40 at half",
            {"learning_rate": 5.1, "adam_beta_1": 0.99, "adam_epsilon": 0.1 / 255, "start": "content", "epochs": 1000},
            (0.5, 1.0),
            40,
            True,
        ),
    ]


class CourseCost:
    """The course's cost of an image as saved (clipped, 8-bit), in float64, against fixed content and style."""

    def __init__(self, model, content, style):
        self.model = model.astype(tf.float64)
        self.layers = [COURSE.content_layer] + [name for name, _ in COURSE.style_layers]
        self.a_C = self.model(tf.constant(content, tf.float64), layers=[COURSE.content_layer])[COURSE.content_layer]
        self.a_S = self.model(tf.constant(style, tf.float64), layers=self.layers)

    def __call__(self, image):
        saved = deprocess_image(image)  # uint8, as the command saves it
        pixels = tf.constant(reshape_and_normalize_image(saved), tf.float64)
        a_G = self.model(pixels, layers=self.layers)
        J_content = nst_tf.compute_content_cost(self.a_C, a_G[COURSE.content_layer])
        J_style = nst_tf.compute_style_cost(self.a_S, a_G, COURSE.style_layers)
        return float(nst_tf.total_cost(J_content, J_style, COURSE.alpha, COURSE.beta))


def _sizes(recipe, height, width):
    return [(max(32, round(height * f)), max(32, round(width * f))) for f in recipe.scales]


def run_recipe(model, pixels, recipe, measure, target, budget, check_every):
    """Runs ``recipe`` until its cost reaches ``target`` (None: to its end), its end, or ``budget`` seconds.
    Returns its trace: (seconds, evaluations, full-size evaluations, cost) at each check of its last scale."""
    content, style = pixels
    height, width = content.shape[:2]
    config = dataclasses.replace(COURSE, seed=0, print_every=check_every, **recipe.config)
    sizes = _sizes(recipe, height, width)
    run = CoarseToFine(
        model, content, style, config, sizes, scale_epochs=recipe.scale_epochs, carry_state=recipe.carry_state
    )
    trace, elapsed, evaluations, full = [], 0.0, 0, 0.0
    started, done_before = time.perf_counter(), {}
    for item in run.run():
        now = time.perf_counter()
        elapsed += now - started
        size = (item.height, item.width)
        done = item.item.iteration + 1
        evaluations += done - done_before.get(size, 0)
        full += (done - done_before.get(size, 0)) * item.height * item.width / (height * width)
        done_before[size] = done
        if item.scale == item.scales:
            cost = measure(item.item.image)
            trace.append((elapsed, evaluations, full, cost))
            if (target is not None and cost <= target) or elapsed > budget:
                break
        started = time.perf_counter()
    return trace


def summarize(trace, target, course_seconds):
    """A table row of ``trace``: first check at or below ``target`` (time, evaluations), and the cost at the last
    check within ``course_seconds``."""
    reached = next((row for row in trace if row[3] <= target), None)
    within = [row for row in trace if row[0] <= course_seconds * 1.0001]
    return {
        "reached": reached is not None,
        "seconds": reached[0] if reached else None,
        "evaluations": reached[1] if reached else None,
        "full_size_evaluations": reached[2] if reached else None,
        "cost_at_course_time": within[-1][3] if within else None,
        "last": trace[-1] if trace else None,
        "trace": trace,
    }


def time_commands(paths, weights, width, height, measure):
    """Wall time of ``python -m nst_tf`` (the course's run) and of ``--preset fast``, start-up included, each in a
    fresh process, and the course's cost of each one's saved picture (read back from its JPEG file)."""
    import subprocess
    import tempfile

    rows = {}
    for name, extra in (("course", []), ("fast", ["--preset", "fast"])):
        with tempfile.TemporaryDirectory() as folder:
            command = [sys.executable, "-m", "nst_tf", *extra, "-c", paths[0], "-s", paths[1], "--model", weights]
            command += ["--width", str(width), "--height", str(height), "--seed", "0", "--output_dir", folder]
            start = time.perf_counter()
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if done.returncode:
                sys.exit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
            seconds = time.perf_counter() - start
            saved = read_image(os.path.join(folder, "generated_image.jpg"))
            rows[name] = {"seconds": seconds, "cost": measure(reshape_and_normalize_image(saved))}
        print(f"command {name}: {rows[name]}", file=sys.stderr, flush=True)
    return rows


def _fmt(value, form):
    return "-" if value is None else format(value, form)


def markdown(result, command):
    lines = [
        f"# Time to the course's picture, {result['size']} ({result['machine']['cpu']}, "
        f"{result['machine']['cpu_cores']} cores, {result['date']})",
        "",
        f"`{command}`; weights: {result['weights']}. Target: the course's cost after its 200 iterations, "
        f"{result['target']:.6g} (the saved image's cost in float64), reached by it in "
        f"{result['course_seconds']:.1f} s.",
        "",
        "| recipe | reached | time (s) | vs the course | evaluations | full-size evaluations | cost in the course's "
        "time | options |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["recipes"].items():
        ratio = None if row["seconds"] is None else row["seconds"] / result["course_seconds"]
        lines.append(
            f"| {name} | {'yes' if row['reached'] else 'no'} | {_fmt(row['seconds'], '.1f')} | "
            f"{_fmt(ratio, '.2f')}x | {_fmt(row['evaluations'], 'd')} | {_fmt(row['full_size_evaluations'], '.0f')} | "
            f"{_fmt(row['cost_at_course_time'], '.4g')} | `{row['options']}` |"
        )
    commands = result.get("commands")
    if commands:
        course, fast = commands["course"], commands["fast"]
        lines += [
            "",
            "The whole commands, start-up included (each in a fresh process; the cost of the saved JPEG):",
            "",
            "| command | time (s) | vs the course | cost of the saved picture |",
            "|---|---|---|---|",
            f"| `python -m nst_tf` | {course['seconds']:.1f} | 1.00x | {course['cost']:.4g} |",
            f"| `python -m nst_tf --preset fast` | {fast['seconds']:.1f} | {fast['seconds'] / course['seconds']:.2f}x "
            f"| {fast['cost']:.4g} |",
        ]
    lines += ["", "Recipes:", ""] + [f"- **{name}**: {row['source']}" for name, row in result["recipes"].items()]
    return "\n".join(lines) + "\n"


def _parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--content", help="the content image (default: the bundled images/content.jpg)")
    parser.add_argument("--style", help="the style image (default: the bundled images/style.jpg)")
    parser.add_argument("--model", help="VGG-19 weights (default: full-size synthetic ones)")
    parser.add_argument("--size", default="400x300", help="output WIDTHxHEIGHT (default: %(default)s)")
    parser.add_argument("--recipes", nargs="+", help="recipe names (default: all); the course's always runs first")
    parser.add_argument("--check_every", type=int, default=10, help="iterations between checks (default: 10)")
    parser.add_argument("--cap", type=float, default=1.0, help="stop a recipe after this many course times")
    parser.add_argument(
        "--stop_at_target",
        action="store_true",
        help="stop each recipe at the target (large sizes) rather than at --cap course times",
    )
    parser.add_argument(
        "--commands", action="store_true", help="also time the whole commands, course and --preset fast"
    )
    parser.add_argument("--quick", action="store_true", help="small weights, 128x96, few iterations: a smoke run")
    return parser


def main():
    args = _parser().parse_args()
    width, height = (int(side) for side in args.size.lower().split("x"))
    if args.quick:
        if not os.path.exists(SMALL_WEIGHTS):
            write_vgg19_mat(SMALL_WEIGHTS, width_divisor=16, seed=0)
        weights, (width, height) = SMALL_WEIGHTS, (128, 96)
    else:
        weights = args.model or ensure_weights()
    model = nst_tf.load_vgg_model(weights)
    root = os.path.dirname(HERE)
    paths = [
        args.content or os.path.join(root, "images", "content.jpg"),
        args.style or os.path.join(root, "images", "style.jpg"),
    ]
    pixels = [fit_image(read_image(path), width, height, "crop") for path in paths]
    measure = CourseCost(model, *(reshape_and_normalize_image(p) for p in pixels))
    table = {recipe.name: recipe for recipe in recipes(max(width, height)) + [fast_recipe()] + candidates()}
    default = [recipe.name for recipe in recipes(max(width, height))] + ["fast"]
    chosen = ["course"] + [name for name in (args.recipes or default) if name != "course"]
    unknown = sorted(set(chosen) - set(table))
    if unknown:
        sys.exit(f"unknown recipes: {', '.join(unknown)}; known: {', '.join(table)}")
    course = table["course"]
    if args.quick:
        course = dataclasses.replace(course, config={"epochs": 20})
    course_trace = run_recipe(model, pixels, course, measure, None, math.inf, args.check_every)
    course_seconds, target = course_trace[-1][0], course_trace[-1][3]
    rows = {}
    for name in chosen:
        recipe = table[name]
        trace = (
            course_trace
            if name == "course"
            else run_recipe(
                model,
                pixels,
                recipe,
                measure,
                target if args.stop_at_target else None,
                max(args.cap, 1.0) * course_seconds,
                args.check_every,
            )
        )
        rows[name] = {**summarize(trace, target, course_seconds), "source": recipe.source, "options": recipe.options}
        row = rows[name]
        print(
            f"{name}: reached {row['reached']} in {row['seconds']} s, {row['evaluations']} evaluations "
            f"({row['full_size_evaluations']} full-size); cost in the course's time {row['cost_at_course_time']}; "
            f"last check {row['last']}",
            file=sys.stderr,
            flush=True,
        )
    commands = time_commands(paths, weights, width, height, measure) if args.commands else None
    result = {
        "commands": commands,
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "size": f"{width}x{height}",
        "weights": "real (--model)"
        if args.model
        else "synthetic (full size)"
        if not args.quick
        else "synthetic (small)",
        "target": target,
        "course_seconds": course_seconds,
        "recipes": rows,
    }
    command = "python benchmarks/time_to_quality.py " + " ".join(sys.argv[1:])
    text = markdown(result, command.strip())
    if args.quick:
        print(text)
        return 0
    vendor = "amd" if "AMD" in result["machine"]["cpu"] else "intel" if "Intel" in result["machine"]["cpu"] else "cpu"
    save_results(f"time-to-quality-cpu-{vendor}-{result['date']}-{width}x{height}", result, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
