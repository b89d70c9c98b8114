"""Time to the course's picture: the recipes users pick, run on the course's objective, to the cost the course's
own recipe reaches after its 200 iterations.

    python benchmarks/time_to_quality.py --content CONTENT.jpg --style STYLE.jpg --commands  # 400x300, all
    python benchmarks/time_to_quality.py --content C --style S --size 1600x1200 --stop_at_target --cap 0.35 \
        --recipes fast lbfgs                                 # the course's, fast and the best rival at 400x300
    python benchmarks/time_to_quality.py --content C --style S --size 1600x1200 --recipes fast --stop_at_target \
        --commands fast --course_from benchmarks/results/time-to-quality-....json     # the course's run reused
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
``python -m nst_tf`` against ``python -m nst_tf --preset fast``, with the cost of each one's saved picture
(``--commands fast``: the fast one alone, against the course's optimization without its start-up, which is less than
its command's time). ``--course_from`` takes the course's run from an earlier result of the same inputs on the same
machine: an hour at 1600x1200 on 2 cores, not to be spent twice. A result never replaces an earlier one.
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
from nst_tf.plan.large_options import LargeImageOptions  # noqa: E402
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
    """One recipe: ``config`` (``StyleTransferConfig`` fields over the course's objective) and ``large`` (its
    sizes: ``LargeImageOptions``, coarse to fine or not). ``options()`` are the nst_tf options that run it."""

    name: str
    source: str
    config: dict
    large: LargeImageOptions = LargeImageOptions()
    preset: str | None = None

    def options(self):
        """The command-line options of this recipe (``--preset NAME`` for a preset's)."""
        if self.preset:
            return f"--preset {self.preset}"
        words = []
        for name, value in self.config.items():
            words += ["-n" if name == "epochs" else f"--{name}", _word(value)]
        for field in dataclasses.fields(LargeImageOptions):
            value = getattr(self.large, field.name)
            if value != field.default:
                words += [f"--{field.name}"] + ([] if value is True else [_word(value)])
        return " ".join(words)


def _word(value):
    return format(value, "g") if isinstance(value, float) else str(value)


def _on_the_courses_scale(value, times):
    """A rate (``times`` 255) or epsilon (``times`` 1/255) for [0, 1] pixels on the course's scale, to 4 digits:
    the number the options print is the number the recipe runs."""
    return float(format(value * times, ".4g"))


def recipes():
    """The recipes of the table, translated to the course's pixel scale."""
    tutorial_rate = _on_the_courses_scale(0.02, PIXEL_SCALE)
    lbfgs = {"optimizer": "lbfgs", "lbfgs_history": 100, "start": "content"}
    return [
        Recipe("course", "the course: Adam(2.0) from the content blended 0.6 with noise", {}),
        Recipe(
            "lbfgs",
            "jcjohnson/neural-style: L-BFGS (history 100) from the content image, 1000 iterations",
            {**lbfgs, "epochs": 1000},
        ),
        Recipe(
            "lbfgs_multires",
            "neural-style's multi-resolution script: L-BFGS at half size, then full size from that result",
            {**lbfgs, "epochs": 1000},
            LargeImageOptions(scales=2, scale_epochs=500),
        ),
        Recipe(
            "tf_tutorial",
            "the TensorFlow tutorial: Adam(0.02, beta_1 0.99, epsilon 0.1) on [0, 1] pixels, from the content image",
            {
                "learning_rate": tutorial_rate,
                "adam_beta_1": 0.99,
                "adam_epsilon": _on_the_courses_scale(0.1, 1 / PIXEL_SCALE),
                "start": "content",
                "epochs": 1000,
            },
        ),
        Recipe(
            "crowsonkb",
            "crowsonkb/style-transfer-pytorch: Adam(0.02, 0.9/0.99) from the content image, every size from the "
            "output's down by sqrt(2) to 128 px, an average (0.99) of the iterates seeds each next size, Adam's "
            "moments carried over",
            {"learning_rate": tutorial_rate, "adam_beta_2": 0.99, "start": "content", "average": 0.99, "epochs": 500},
            LargeImageOptions(scale_epochs=500, scale_factor=1.414, min_scale=128, carry_state=True),
        ),
        Recipe(
            "gatys2017",
            "Gatys et al. 2017: L-BFGS, 500 iterations at half size, then 200 at full size from that result",
            {**lbfgs, "epochs": 200},
            LargeImageOptions(scales=2, scale_epochs=500),
        ),
    ]


def fast_recipe():
    """The ``fast`` preset as a recipe: its hyperparameters over the course's and its sizes."""
    fast = PRESETS["fast"]
    fields = {f.name: getattr(fast.config, f.name) for f in dataclasses.fields(COURSE)}
    config = {name: value for name, value in fields.items() if value != getattr(COURSE, name)}
    return Recipe("fast", f"nst_tf's fast preset: {fast.summary}", config, fast.large, preset="fast")


def candidates():
    """Recipes tried for ``fast`` (run by name with ``--recipes``; not in the table by default)."""
    lbfgs = {"optimizer": "lbfgs", "lbfgs_history": 100, "start": "content", "epochs": 1000}
    return [
        *(
            Recipe(
                f"try_lbfgs_{scales}x{epochs}",
                f"L-BFGS from the content, {scales} sizes by halves, {epochs} iterations at each earlier one",
                lbfgs,
                LargeImageOptions(scales=scales, scale_epochs=epochs),
            )
            for scales in (2, 3, 4)
            for epochs in (60, 30)
        ),
        *(
            Recipe(
                f"try_lbfgs_min{side}x{epochs}",
                f"L-BFGS from the content, sizes by halves down to {side} px, {epochs} iterations at each earlier one",
                lbfgs,
                LargeImageOptions(min_scale=side, scale_epochs=epochs),
            )
            for side in (200, 300)
            for epochs in (60, 40, 30)
        ),
        Recipe("try_adam_10", "Adam(10) from the content", {"learning_rate": 10.0, "start": "content", "epochs": 1000}),
        Recipe(
            "try_adam_10_avg",
            "Adam(10) from the content, average 0.9",
            {"learning_rate": 10.0, "start": "content", "epochs": 1000, "average": 0.9},
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


def run_recipe(model, pixels, recipe, measure, target, budget, check_every):
    """Runs ``recipe`` until its cost reaches ``target`` (None: to its end), its end, or ``budget`` seconds.
    Returns its trace: (seconds, evaluations, full-size evaluations, cost) at each check of its last scale."""
    content, style = pixels
    height, width = content.shape[:2]
    config = dataclasses.replace(COURSE, seed=0, print_every=check_every, **recipe.config)
    large = recipe.large
    sizes = large.sizes(height, width)
    run = CoarseToFine(
        model, content, style, config, sizes, scale_epochs=large.scale_epochs, carry_state=large.carry_state
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


def course_epochs(recipe):
    """The course recipe's iterations (the course's own unless its config says otherwise)."""
    return recipe.config.get("epochs", COURSE.epochs)


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


def time_commands(names, paths, weights, width, height, measure):
    """Wall time of the ``names`` among ``python -m nst_tf`` ("course") and ``--preset fast`` ("fast"), start-up
    included, each in a fresh process, and the course's cost of each one's saved picture (its JPEG file)."""
    import subprocess
    import tempfile

    rows = {}
    for name, extra in (("course", []), ("fast", ["--preset", "fast"])):
        if name not in names:
            continue
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


def _command_lines(commands, course_seconds):
    """The table of the whole commands; without the course's command, the course's optimization alone (start-up
    not counted: less than its command takes) is what the fast command is compared with."""
    course = commands.get("course")
    base = course["seconds"] if course else course_seconds
    lines = [
        "",
        "The whole commands, start-up included (each in a fresh process; the cost of the saved JPEG):",
        "",
        "| command | time (s) | vs the course | cost of the saved picture |",
        "|---|---|---|---|",
    ]
    if course:
        lines.append(f"| `python -m nst_tf` | {course['seconds']:.1f} | 1.00x | {course['cost']:.4g} |")
    else:
        lines[1] += (
            f" the course's command was not run: the fast command is compared with the course's optimization alone, "
            f"{course_seconds:.1f} s without start-up, which is less than its command takes"
        )
    fast = commands.get("fast")
    if fast:
        lines.append(
            f"| `python -m nst_tf --preset fast` | {fast['seconds']:.1f} | {fast['seconds'] / base:.3f}x "
            f"| {fast['cost']:.4g} |"
        )
    return lines


def _digest(path):
    """SHA-256 of a file, to tell whether an earlier result was measured on the same inputs."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def earlier_course(path, inputs):
    """The course's trace from an earlier result (``--course_from``): same machine, size, images and weights."""
    import json

    with open(path) as handle:
        earlier = json.load(handle)
    if earlier["machine"]["cpu"] != machine()["cpu"]:
        sys.exit(f"{path}: measured on {earlier['machine']['cpu']}, not on this machine")
    known = earlier.get("inputs", {"size": earlier["size"]})
    differ = [name for name in inputs if name in known and known[name] != inputs[name]]
    if differ:
        sys.exit(f"{path}: another {' and '.join(differ)}; the course's run must be of the same inputs")
    return [tuple(row) for row in earlier["recipes"]["course"]["trace"]]


def _fmt(value, form):
    return "-" if value is None else format(value, form)


def markdown(result, command):
    lines = [
        f"# Time to the course's picture, {result['size']} ({result['machine']['cpu']}, "
        f"{result['machine']['cpu_cores']} cores, {result['date']})",
        "",
        f"`{command}`; weights: {result['weights']}. Target: the course's cost after its 200 iterations, "
        f"{result['target']:.6g} (the saved image's cost in float64), reached by it in "
        f"{result['course_seconds']:.1f} s"
        + (f" (the course's run of {result['course_from']}, same machine)." if result.get("course_from") else "."),
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
    if result.get("commands"):
        lines += _command_lines(result["commands"], result["course_seconds"])
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
        "--commands",
        nargs="*",
        choices=("course", "fast"),
        help="also time the whole commands, python -m nst_tf (course) and --preset fast (fast); none named: both",
    )
    parser.add_argument(
        "--course_from",
        metavar="JSON",
        help="take the course's run (its time and target) from an earlier result of this script at the same size, "
        "images and weights on this machine, rather than run it again (an hour at 1600x1200 on 2 cores)",
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
    table = {recipe.name: recipe for recipe in recipes() + [fast_recipe()] + candidates()}
    default = [recipe.name for recipe in recipes()] + ["fast"]
    chosen = ["course"] + [name for name in (args.recipes or default) if name != "course"]
    unknown = sorted(set(chosen) - set(table))
    if unknown:
        sys.exit(f"unknown recipes: {', '.join(unknown)}; known: {', '.join(table)}")
    course = table["course"]
    if args.quick:
        course = dataclasses.replace(course, config={"epochs": 20})
    inputs = {"size": f"{width}x{height}", "images": [_digest(path) for path in paths], "weights": _digest(weights)}
    if args.course_from:
        course_trace = earlier_course(args.course_from, inputs)
    else:  # checked once, at its end: only its time and final cost are used
        course_trace = run_recipe(model, pixels, course, measure, None, math.inf, course_epochs(course))
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
                args.cap * course_seconds,
                args.check_every,
            )
        )
        rows[name] = {**summarize(trace, target, course_seconds), "source": recipe.source, "options": recipe.options()}
        row = rows[name]
        print(
            f"{name}: reached {row['reached']} in {row['seconds']} s, {row['evaluations']} evaluations "
            f"({row['full_size_evaluations']} full-size); cost in the course's time {row['cost_at_course_time']}; "
            f"last check {row['last']}",
            file=sys.stderr,
            flush=True,
        )
    commands = None
    if args.commands is not None:
        commands = time_commands(args.commands or ("course", "fast"), paths, weights, width, height, measure)
    result = {
        "inputs": inputs,
        "course_from": os.path.basename(args.course_from) if args.course_from else None,
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
    # Files by name only: where the user keeps the course's images is no part of the result.
    words = [os.path.basename(word) if os.path.isfile(word) else word for word in sys.argv[1:]]
    command = "python benchmarks/time_to_quality.py " + " ".join(words)
    text = markdown(result, command.strip())
    if args.quick:
        print(text)
        return 0
    vendor = "amd" if "AMD" in result["machine"]["cpu"] else "intel" if "Intel" in result["machine"]["cpu"] else "cpu"
    stem = f"time-to-quality-cpu-{vendor}-{result['date']}-{width}x{height}"
    taken = {os.path.splitext(name)[0] for name in os.listdir(os.path.join(HERE, "results"))}
    stem = next(f"{stem}{suffix}" for suffix in ("", *(f"-{k}" for k in range(2, 1000))) if stem + suffix not in taken)
    save_results(stem, result, text)  # a second run the same day is kept beside the first
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
