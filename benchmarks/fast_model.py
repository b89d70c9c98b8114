"""Fast style models: stylization time, training throughput, and the cost reached on held-out photos.

Stylization time through the exported SavedModel, training throughput against a bare step, and the cost a
trained network reaches on held-out photos beside the cost the optimization reaches on them.

    python benchmarks/fast_model.py                                        # all three, the default network
    python benchmarks/fast_model.py --sections stylize --widths 0.25 0.5 1.0 --upsampling resize transposed
    python benchmarks/fast_model.py --sections quality --content_dir photos/ --weights vgg19.mat --iterations 2000
    python benchmarks/fast_model.py --quick                                # tiny sizes and weights: a smoke run

Sections:
  stylize  seconds per image at 512x512, 1024x1024 and 1920x1080 (batch 1, float32 0-255 RGB) through the
           ``serving_default`` signature of ``export_fast_model``'s SavedModel, loaded back with
           tf.saved_model.load; the median of ``--rounds`` calls after a first one (which traces); one network per
           ``--widths`` x ``--upsampling`` (the weights do not change the time: freshly initialized ones), with
           its multiply-adds counted from the layers (Johnson et al.'s full width: about 130 G at 1024x1024, or
           260 GFLOP counting a multiply and an add apart). The target: 1024x1024 under 1 s on 2 CPU cores.
  train    content images per second of nst_tf's training step (``loop.trainer.Trainer`` on
           ``objective.training_cost.TrainingCost``) against a bare ``tf.function`` step of the same network and the
           same loss written here in tf.nn ops (Gram matrices of the whole batch at once), interleaved rounds of
           ``--steps`` steps on one batch held in memory; both start from the same weights, and their first
           costs must agree. The target ratio (nst_tf over bare): at least 0.95.
  quality  trains a network on ``--content_dir`` (default: a folder of synthetic textures) for
           ``--iterations`` steps with ``runs.training_run.TrainingRun``, then reports each held-out image's total cost
           stylized by the network beside the cost ``--opt_iterations`` of the optimization (Adam, the course's)
           reach from the course's noise image, and the wall seconds of each (the optimization's with its
           tracing, as a user waits for it; the network's for the held-out batch at once, per image).

Uses full-size synthetic VGG-19 weights (bench.py's, benchmarks/.cache/) unless ``--weights`` names a file;
``--quick`` small ones. Writes benchmarks/results/fast_model-<device>-<date>.json and .md, the sections named
at the end of the name when not all run (a ``--quick`` run only prints).
"""

import argparse
import dataclasses
import datetime
import json
import os
import shlex
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from bench import device_label, ensure_weights, machine  # noqa: E402
from PIL import Image  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf.loop.trainer import Trainer  # noqa: E402
from nst_tf.objective.training_cost import TrainingCost  # noqa: E402
from nst_tf.plan.fast_model import FastModelDescription, TransformSpec  # noqa: E402
from nst_tf.plan.networks.network_registry import get_network  # noqa: E402
from nst_tf.plan.synthetic import write_vgg19_mat  # noqa: E402
from nst_tf.plan.training_options import TrainConfig  # noqa: E402
from nst_tf.plan.weights.reader_registry import read_network_weights  # noqa: E402
from nst_tf.runs.fast_export import export_fast_model  # noqa: E402
from nst_tf.runs.fast_models import new_fast_model  # noqa: E402
from nst_tf.runs.presets import PRESETS  # noqa: E402
from nst_tf.runs.training_run import TrainingRun  # noqa: E402
from nst_tf.runs.training_data import TrainingImages, centre_crops, list_training_images  # noqa: E402
from nst_tf.tensors.images import fit_image, read_image, reshape_and_normalize_image  # noqa: E402
from nst_tf.tensors.modules import build_network  # noqa: E402
from nst_tf.tensors.quiet import tensorflow as tf  # noqa: E402
from nst_tf.tensors.transform_net import build_transform_net  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
SMALL_WEIGHTS = os.path.join(HERE, ".cache", "imagenet-vgg-verydeep-19-synthetic-small.mat")
STYLE = os.path.join(ROOT, "images", "style.jpg")
#: The training command's objective: the first edition's (alpha 10, beta 40, conv4_2, five style layers).
CONFIG = PRESETS["first_edition"].config
SIZES = ((512, 512), (1024, 1024), (1920, 1080))  # (width, height)
QUICK_SIZES = ((64, 64), (96, 72))


# Stylize --------------------------------------------------------------------


def multiply_adds(spec, width, height):
    """The convolutions' multiply-adds of ``spec``'s network on one ``width`` x ``height`` image (sides padded to
    multiples of 4, as the network pads them); normalizations and activations are a few per pixel, left out."""
    h, w = -(-height // 4) * 4, -(-width // 4) * 4
    c1, c2, c3 = spec.channels
    full, half, quarter = h * w, h * w // 4, h * w // 16
    layers = [full * 81 * 3 * c1, half * 9 * c1 * c2, quarter * 9 * c2 * c3, spec.blocks * 2 * quarter * 9 * c3 * c3]
    if spec.upsampling == "transposed":  # each input pixel scatters a 3x3 kernel
        layers += [quarter * 9 * c3 * c2, half * 9 * c2 * c1]
    else:  # a 3x3 convolution at the doubled size
        layers += [half * 9 * c3 * c2, full * 9 * c2 * c1]
    return sum(layers + [full * 81 * c1 * 3])


def time_stylize(spec, sizes, rounds, folder):
    """{"WxH": {"first_s", "median_s", "gmacs"}} of ``spec``'s exported SavedModel's serving_default."""
    model = new_fast_model(FastModelDescription(spec, ("style",)))
    exported = export_fast_model(model, folder)
    serve = tf.saved_model.load(exported.saved_model).signatures["serving_default"]
    rng = np.random.default_rng(0)
    rows = {}
    for width, height in sizes:
        images = tf.constant(rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32))
        start = time.perf_counter()
        serve(images=images)["stylized"].numpy()
        first = time.perf_counter() - start
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            serve(images=images)["stylized"].numpy()
            times.append(time.perf_counter() - start)
        rows[f"{width}x{height}"] = {
            "first_s": first,
            "median_s": statistics.median(times),
            "gmacs": multiply_adds(spec, width, height) / 1e9,
        }
    return rows


def section_stylize(args, sizes):
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for width in args.widths:
            for upsampling in args.upsampling:
                spec = TransformSpec(width=width, blocks=args.blocks, upsampling=upsampling)
                folder = os.path.join(scratch, f"{width}-{upsampling}")
                results[f"width {width:g}, {upsampling}"] = time_stylize(spec, sizes, args.rounds, folder)
    return results


# Train ----------------------------------------------------------------------


class BareTrainStep:
    """A training step written directly: the transformation network, VGG-19 in tf.nn ops, the course's content
    and style costs of each image of the batch at once (one style), Keras' Adam."""

    def __init__(self, net, vgg_weights, style, config, learning_rate, pooling):
        self.net, self.config, self.pool = net, config, tf.nn.avg_pool2d if pooling == "avg" else tf.nn.max_pool2d
        self.conv = {name: (tf.constant(k), tf.constant(b)) for name, (k, b) in vgg_weights.conv.items()}
        self.layers = [name for name, _ in config.style_layers]
        self.means = tf.constant(nst_tf.CONFIG.MEANS.reshape(1, 1, 1, 3), tf.float32)
        self.grams = {name: self.gram(a)[0] for name, a in self.features(tf.constant(style, tf.float32)).items()}
        self.optimizer = tf.keras.optimizers.Adam(learning_rate)
        self.optimizer.build(net.trainable_variables)
        self.step = tf.function(self._step)

    def features(self, x):
        """{layer: activations} of the content layer and the style layers of normalized images x (B, H, W, 3)."""
        wanted, out = set(self.layers) | {self.config.content_layer}, {}
        for block, convs in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 1)):
            if block > 1:
                x = self.pool(x, 2, 2, "SAME")
            for index in range(1, convs + 1):
                name = f"conv{block}_{index}"
                kernel, bias = self.conv[name]
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
                if name in wanted:
                    out[name] = x
        return out

    @staticmethod
    def gram(a):
        """(B, C, C) Gram matrices of activations a (B, H, W, C)."""
        flat = tf.reshape(a, [tf.shape(a)[0], -1, a.shape[-1]])
        return tf.matmul(flat, flat, transpose_a=True)

    def loss(self, contents):
        """The mean over the batch of ``alpha * J_content + beta * J_style`` (the course's normalizations)."""
        batch = tf.shape(contents)[0]
        generated = self.net([contents, tf.ones([batch, 1])], training=True)
        acts = self.features(tf.concat([generated, contents], 0) - self.means)
        content = acts[self.config.content_layer]
        _, h, w, c = content.shape
        j_content = tf.reduce_sum(tf.square(content[:batch] - content[batch:]), [1, 2, 3]) / (4.0 * h * w * c)
        j_style = 0.0
        for name, weight in self.config.style_layers:
            a = acts[name][:batch]
            _, h, w, c = a.shape
            square = tf.reduce_sum(tf.square(self.gram(a) - self.grams[name]), [1, 2])
            j_style += weight * square / (4.0 * c * c * (h * w) ** 2)
        return tf.reduce_mean(self.config.alpha * j_content + self.config.beta * j_style)

    def _step(self, contents):
        with tf.GradientTape() as tape:
            loss = self.loss(contents)
        variables = self.net.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss


def _style_image(side):
    """The style image at shorter side ``side``, stretched, normalized: as ``TrainingRun`` brings it."""
    pixels = read_image(STYLE)
    height, width = nst_tf.shorter_side_size(*pixels.shape[:2], side)
    return reshape_and_normalize_image(fit_image(pixels, width, height, "stretch"), CONFIG.normalization)


def _nst_trainer(spec, vgg_weights, style, options):
    loss_network = build_network(get_network(CONFIG.network), vgg_weights, tf.float32, "avg")
    objective = TrainingCost(loss_network, [style], CONFIG)
    tf.keras.utils.set_random_seed(0)
    net = build_transform_net(spec)
    optimizer = tf.keras.optimizers.Adam(options.learning_rate)
    optimizer.build(net.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    return Trainer(net, objective, optimizer, step, options.batch_size, options.seed)


def section_train(args, vgg_weights, side, batch_size):
    """Images per second of both steps, interleaved over ``args.rounds`` rounds of ``args.steps`` steps each."""
    options = TrainConfig(image_size=side, batch_size=batch_size)
    spec = TransformSpec(width=args.widths[0], blocks=args.blocks, upsampling=args.upsampling[0])
    style = _style_image(side)
    contents = tf.constant(np.random.default_rng(1).uniform(0, 255, (batch_size, side, side, 3)).astype(np.float32))
    trainer = _nst_trainer(spec, vgg_weights, style, options)
    bare_net = build_transform_net(spec)
    bare_net.set_weights(trainer.net.get_weights())
    bare = BareTrainStep(bare_net, vgg_weights, style, CONFIG, options.learning_rate, "avg")
    one_hot = tf.ones([batch_size, 1])
    generated = trainer.net([contents, one_hot], training=True)
    nst_first = float(tf.reduce_mean(trainer.objective.costs(generated, contents, one_hot)["total"]))
    bare_first = float(bare.loss(contents))
    assert np.isclose(nst_first, bare_first, rtol=1e-4), (
        "the two steps compute different costs",
        nst_first,
        bare_first,
    )

    def nst(steps):
        for _ in trainer.run(iter(lambda: contents, None), int(trainer.step.numpy()) + steps):
            pass

    def bare_steps(steps):
        for _ in range(steps):
            float(bare.step(contents))

    runners = {"nst_tf": nst, "bare": bare_steps}
    first = {name: _seconds(run, 1) for name, run in runners.items()}  # traces
    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            times[name].append(_seconds(run, args.steps) / args.steps)
    rates = {name: batch_size / statistics.median(seconds) for name, seconds in times.items()}
    return {
        "image_size": side,
        "batch_size": batch_size,
        "network": dataclasses.asdict(spec),
        "first_costs": {"nst_tf": nst_first, "bare": bare_first},
        "first_call_s": first,
        "images_per_s": rates,
        "ratio": rates["nst_tf"] / rates["bare"],
    }


def _seconds(run, steps):
    start = time.perf_counter()
    run(steps)
    return time.perf_counter() - start


# Quality --------------------------------------------------------------------


def write_textures(folder, count, side, seed=0):
    """``count`` smooth random colour textures (PNG, ``side`` pixels a side) in ``folder``: stand-ins for photos."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        coarse = rng.integers(0, 256, (rng.integers(3, 9), rng.integers(3, 9), 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((side, side), Image.BICUBIC)
        image.save(os.path.join(folder, f"texture{index:03d}.png"))
    return folder


def section_quality(args, weights_path, held_out, opt_iterations, iterations, side, batch_size, scratch):
    """Each held-out image's total cost stylized by the trained network and reached by the optimization."""
    content_dir = args.content_dir or write_textures(os.path.join(scratch, "photos"), 24, side * 2)
    listed = list_training_images(content_dir)
    if len(listed.paths) <= held_out:
        raise SystemExit(f"--content_dir: give more than {held_out} photos ({held_out} are held out)")
    images, held = TrainingImages(listed.paths[:-held_out], listed.skipped), listed.paths[-held_out:]
    options = TrainConfig(iterations=iterations, image_size=side, batch_size=batch_size, checkpoint_every=10**6)
    spec = dict(width=args.widths[0], blocks=args.blocks, upsampling=args.upsampling[0])
    options = dataclasses.replace(options, **spec)
    run = TrainingRun(options, CONFIG, [STYLE], images, weights_path, "avg", os.path.join(scratch, "model"))
    run.prepare()
    start = time.perf_counter()
    for _ in run.steps():
        pass
    train_s = time.perf_counter() - start
    contents = centre_crops(held, side)
    one_hot = tf.ones([len(held), 1])
    start = time.perf_counter()
    generated = run.net([contents, one_hot], training=False)
    network_s = (time.perf_counter() - start) / len(held)
    network_costs = run.objective.costs(generated, contents, one_hot)["total"].numpy()
    loss_network = build_network(
        get_network(CONFIG.network), read_network_weights(CONFIG.network, weights_path), tf.float32, "avg"
    )
    config = dataclasses.replace(CONFIG, epochs=opt_iterations)
    rows = []
    for index, path in enumerate(held):
        content = contents[index : index + 1].numpy() - nst_tf.CONFIG.MEANS.reshape(1, 1, 1, 3)
        transfer = nst_tf.StyleTransfer(nst_tf.StyleCost(loss_network, content, _style_image(side), config))
        start = time.perf_counter()
        transfer.step(opt_iterations)
        optimize_s = time.perf_counter() - start
        optimized = transfer.costs()["total"]
        rows.append({"image": os.path.basename(path), "network": float(network_costs[index]), "optimized": optimized,
                     "ratio": float(network_costs[index]) / optimized, "optimize_s": optimize_s})  # fmt: skip
    return {"iterations": iterations, "image_size": side, "train_s": train_s, "network_s_per_image": network_s,
            "opt_iterations": opt_iterations, "held_out": rows}  # fmt: skip


# Report ---------------------------------------------------------------------


def markdown(result, command):
    m = result["machine"]
    lines = [
        f"# Fast style models ({m['cpu']}, {m['cpu_cores']} cores, TensorFlow {m['tensorflow']}, {result['date']})",
        "",
        f"`{command}`",
    ]
    if "stylize" in result:
        lines += ["", "## Stylization through the SavedModel (batch 1, float32; median after the first call)", ""]
        lines += ["| network | size | first call | per image | multiply-adds |", "|---|---|---|---|---|"]
        for name, rows in result["stylize"].items():
            for size, row in rows.items():
                lines.append(
                    f"| {name} | {size} | {row['first_s']:.3f} s | {row['median_s']:.3f} s | {row['gmacs']:.1f} G |"
                )
    if "train" in result:
        t = result["train"]
        lines += ["", f"## Training throughput ({t['batch_size']} images of {t['image_size']} px a step)", ""]
        lines += ["| nst_tf | bare | ratio |", "|---|---|---|"]
        rates = t["images_per_s"]
        lines.append(f"| {rates['nst_tf']:.3f} images/s | {rates['bare']:.3f} images/s | {t['ratio']:.3f} |")
    if "quality" in result:
        q = result["quality"]
        lines += ["", f"## Cost on held-out images ({q['iterations']} training steps at {q['image_size']} px, "
                  f"{q['train_s']:.1f} s; optimization: {q['opt_iterations']} iterations)", ""]  # fmt: skip
        lines += ["| image | network | optimization | ratio | optimization time |", "|---|---|---|---|---|"]
        for row in q["held_out"]:
            lines.append(f"| {row['image']} | {row['network']:.4g} | {row['optimized']:.4g} | {row['ratio']:.2f} | "
                         f"{row['optimize_s']:.2f} s (network: {q['network_s_per_image']:.3f} s) |")  # fmt: skip
    return "\n".join(lines) + "\n"


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and weights: a smoke run, printed only")
    parser.add_argument("--sections", nargs="+", choices=("stylize", "train", "quality"),
                        default=["stylize", "train", "quality"], help="what to measure (default: all)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, the median kept (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=5, help="training steps a round (default: %(default)s)")
    parser.add_argument("--widths", type=float, nargs="+", default=[TransformSpec.width], help="network widths")
    parser.add_argument("--upsampling", nargs="+", choices=("resize", "transposed"),
                        default=[TransformSpec.upsampling], help="upsampling kinds")  # fmt: skip
    parser.add_argument("--blocks", type=int, default=TransformSpec.blocks, help="residual blocks")
    parser.add_argument("--weights", help="the VGG-19 .mat (default: full-size synthetic weights)")
    parser.add_argument("--batch_size", type=int, default=4, help="training batch (default: %(default)s)")
    parser.add_argument("--image_size", type=int, default=256, help="training crops' side (default: %(default)s)")
    parser.add_argument("--content_dir", help="photos for the quality section (default: synthetic textures)")
    parser.add_argument("--iterations", type=int, default=2000, help="training steps of the quality section")
    parser.add_argument("--opt_iterations", type=int, default=200, help="the optimization's iterations")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.quick:
        if not os.path.exists(SMALL_WEIGHTS):
            write_vgg19_mat(SMALL_WEIGHTS, width_divisor=16, seed=0)
        weights_path, sizes, side, batch = args.weights or SMALL_WEIGHTS, QUICK_SIZES, 64, 2
        args.rounds, args.steps = 2, 2
        iterations, opt_iterations = 4, 4
    else:
        weights_path, sizes, side, batch = args.weights or ensure_weights(), SIZES, args.image_size, args.batch_size
        iterations, opt_iterations = args.iterations, args.opt_iterations
    result = {"machine": machine(), "date": datetime.date.today().isoformat(), "rounds": args.rounds}
    if "stylize" in args.sections:
        result["stylize"] = section_stylize(args, sizes)
    if "train" in args.sections:
        result["train"] = section_train(args, read_network_weights(CONFIG.network, weights_path), side, batch)
    if "quality" in args.sections:
        with tempfile.TemporaryDirectory() as scratch:
            result["quality"] = section_quality(args, weights_path, 4, opt_iterations, iterations, side, batch, scratch)
    command = shlex.join(["python", "benchmarks/fast_model.py", *(sys.argv[1:] if argv is None else argv)])
    text = markdown(result, command)
    print(text)
    if not args.quick:
        stem = f"fast_model-{device_label()}-{result['date']}"
        if set(args.sections) != {"stylize", "train", "quality"}:  # one section's run keeps the others' files
            stem += "-" + "-".join(args.sections)
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, stem + ".json"), "w") as handle:
            json.dump(result | {"command": command}, handle, indent=2)
        with open(os.path.join(RESULTS, stem + ".md"), "w") as handle:
            handle.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
