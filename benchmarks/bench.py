"""Step time, memory and scaling of nst_tf, against a bare-TF ceiling and the Keras-model peer.

    python benchmarks/bench.py            # everything; about 10 minutes on 2 CPU cores
    python benchmarks/bench.py --quick    # fewer repetitions and sizes, a smoke run

Uses full-size synthetic VGG-19 weights (written once to benchmarks/.cache/, about 530 MB),
never the real file. Writes benchmarks/results/<device>-<date>.json and .md.

Sections:
  step       400x300 step time: nst_tf vs bare tf.nn (the ceiling) vs the Keras VGG19 peer,
             timed interleaved, ratios taken pair by pair; tracing time apart.
  variants   nst_tf in float32 / bf16 / fp16, with and without XLA; 200-step cost of bf16 vs float32.
  scaling    step time and peak memory from 128x128 to 1024x1024 (GPU: to 1920x1080), each size
             in a fresh process; fitted exponent of step time against pixel count.
  load       peak and retained resident memory while loading the full-size .mat.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# TensorFlow reads this when it is imported, so it is set before the imports below (hence their noqa: E402).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf.tensors.precision import cpu_flags  # noqa: E402
from nst_tf.plan.synthetic import write_vgg19_mat  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
WEIGHTS = os.path.join(HERE, ".cache", "imagenet-vgg-verydeep-19-synthetic.mat")
RESULTS = os.path.join(HERE, "results")
# Every runner takes its hyperparameters from here, so a changed default cannot
# make them compare different work (section_step also checks their first costs).
DEFAULTS = nst_tf.StyleTransferConfig(seed=0)
CONTENT_LAYER = DEFAULTS.content_layer
STYLE_NAMES = [name for name, _ in DEFAULTS.style_layers]
#: CPU features that decide speed: vector width, FMA, and native reduced precision.
SPEED_FLAGS = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16", "amx_fp16"})
KERAS_NAMES = {f"conv{b}_{c}": f"block{b}_conv{c}" for b in range(1, 6) for c in range(1, 5)}


# Helpers ------------------------------------------------------------------


def save_results(stem, result, text):
    """Writes ``result`` as results/<stem>.json and ``text`` (Markdown) as results/<stem>.md, and prints the text."""
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, stem + ".json"), "w") as handle:
        json.dump(result, handle, indent=2)
    with open(os.path.join(RESULTS, stem + ".md"), "w") as handle:
        handle.write(text + "\n")
    print(text)


def ensure_weights():
    if not os.path.exists(WEIGHTS):
        print(f"writing full-size synthetic weights to {WEIGHTS} (about a minute)", file=sys.stderr)
        write_vgg19_mat(WEIGHTS, width_divisor=1, seed=0)
    return WEIGHTS


def _status_bytes(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss_bytes():
    return _status_bytes("VmRSS")


def peak_rss_bytes():
    # VmHWM, not getrusage's ru_maxrss: a child started by subprocess inherits
    # its parent's ru_maxrss across fork and exec.
    return _status_bytes("VmHWM")


def reset_peak_rss():
    """Sets VmHWM to the current resident size (Linux 4.0+); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def gpu_name():
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")


def device_label():
    """The GPU's name, or the CPU's kind: vendor, native bfloat16 or not, and any oneDNN setting."""
    gpu = gpu_name()
    if gpu:
        return gpu.lower().replace(" ", "-")
    cpu = machine()["cpu"]
    vendor = "intel" if "Intel" in cpu else "amd" if "AMD" in cpu else "cpu"
    label = f"cpu-{vendor}-" + ("bf16" if {"avx512_bf16", "amx_bf16"} & cpu_flags() else "nobf16")
    if "ONEDNN_MAX_CPU_ISA" in os.environ:
        label += "-onednn-" + os.environ["ONEDNN_MAX_CPU_ISA"].lower()
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        label += "-onednn-off"
    return label


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = sorted(cpu_flags() & SPEED_FLAGS)
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "onednn": {
            name: os.environ[name] for name in ("ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS") if name in os.environ
        },
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "gpu": gpu_name(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "nst_tf": nst_tf.__version__,
    }


def images(height, width, seed=0):
    rng = np.random.default_rng(seed)
    content = rng.normal(0, 50, (1, height, width, 3)).astype(np.float32)
    style = rng.normal(0, 50, (1, height, width, 3)).astype(np.float32)
    return content, style


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# The three ways of writing one step ----------------------------------------


class NstStep:
    """nst_tf's own loop, one iteration per call (as a per-step comparison needs)."""

    def __init__(self, model, content, style, precision="float32", jit_compile=False):
        config = dataclasses.replace(DEFAULTS, precision=precision, jit_compile=jit_compile)
        self.transfer = nst_tf.StyleTransfer(nst_tf.StyleCost(model, content, style, config))

    def first_cost(self):
        return self.transfer.costs()["total"]

    def __call__(self, n=1):
        self.transfer.step(n)


def keras_max_pool(x, ksize, strides, padding):
    """Keras' MaxPooling2D((2, 2)): VALID padding, so an odd last row or column is dropped."""
    return tf.nn.max_pool2d(x, ksize, strides, "VALID")


class BareStep:
    """The same work in plain tf.nn ops and a fused Adam kernel: the ceiling."""

    def __init__(self, weights, content, style, compute_dtype=tf.float32, pool=tf.nn.avg_pool2d):
        self.dtype = compute_dtype
        self.pool = pool
        self.conv = {
            name: (
                tf.Variable(tf.cast(k, compute_dtype), trainable=False),
                tf.Variable(tf.cast(b, compute_dtype), trainable=False),
            )
            for name, (k, b) in weights.conv.items()
        }
        self.image = tf.Variable(nst_tf.generate_noise_image(content, seed=0))
        self.m = tf.Variable(tf.zeros_like(self.image))
        self.v = tf.Variable(tf.zeros_like(self.image))
        self.t = tf.Variable(0.0)
        features = self.features(tf.constant(content))
        self.content_target = features[CONTENT_LAYER]
        style_features = self.features(tf.constant(style))
        self.grams = {name: self.gram(style_features[name]) for name in STYLE_NAMES}
        self.step = tf.function(self._step)

    def first_cost(self):
        return float(self.cost(self.image))

    def features(self, image):
        x = tf.cast(image, self.dtype)
        out = {}
        for block, convs in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 1)):  # through conv5_1
            if block > 1:
                x = self.pool(x, 2, 2, "SAME")
            for c in range(1, convs + 1):
                name = f"conv{block}_{c}"
                kernel, bias = self.conv[name]
                x = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)
                if name == CONTENT_LAYER or name in STYLE_NAMES:
                    out[name] = tf.cast(x, tf.float32)
        return out

    @staticmethod
    def gram(a):
        flat = tf.reshape(a, [-1, a.shape[-1]])
        return tf.matmul(flat, flat, transpose_a=True)

    def cost(self, image):
        f = self.features(image)
        _, h, w, c = f[CONTENT_LAYER].shape
        J_content = tf.reduce_sum(tf.square(self.content_target - f[CONTENT_LAYER])) / (4.0 * h * w * c)

        def layer_cost(name):
            _, h, w, c = f[name].shape
            return tf.reduce_sum(tf.square(self.grams[name] - self.gram(f[name]))) / (4.0 * c * c * (h * w) ** 2)

        J_style = nst_tf.weighted_style_cost(DEFAULTS.style_layers, layer_cost)
        return DEFAULTS.alpha * J_content + DEFAULTS.beta * J_style

    def _step(self):
        with tf.GradientTape() as tape:
            J = self.cost(self.image)
        gradient = tape.gradient(J, self.image)
        self.t.assign_add(1.0)
        tf.raw_ops.ResourceApplyAdam(
            var=self.image.handle,
            m=self.m.handle,
            v=self.v.handle,
            beta1_power=tf.pow(0.9, self.t),
            beta2_power=tf.pow(0.999, self.t),
            lr=DEFAULTS.learning_rate,
            beta1=0.9,
            beta2=0.999,
            epsilon=DEFAULTS.adam_epsilon,
            grad=gradient,
        )
        return J

    def __call__(self, n=1):
        for _ in range(n):
            self.step().numpy()


class KerasPeerStep:
    """The TensorFlow tutorial's pipeline: keras.applications.VGG19 with several outputs.

    The peer uses Keras's VGG19 graph as it is (max pooling), with our
    synthetic weights copied in, the same costs and Adam(2.0).
    """

    def __init__(self, weights, content, style):
        height, width = content.shape[1:3]
        vgg = tf.keras.applications.VGG19(weights=None, include_top=False, input_shape=(height, width, 3))
        for name, (kernel, bias) in weights.conv.items():
            vgg.get_layer(KERAS_NAMES[name]).set_weights([kernel, bias])
        vgg.trainable = False
        names = [CONTENT_LAYER] + STYLE_NAMES
        self.extractor = tf.keras.Model(vgg.input, [vgg.get_layer(KERAS_NAMES[n]).output for n in names])
        self.names = names
        self.image = tf.Variable(nst_tf.generate_noise_image(content, seed=0))
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=DEFAULTS.learning_rate, epsilon=DEFAULTS.adam_epsilon)
        content_out = dict(zip(names, self.extractor(content)))
        style_out = dict(zip(names, self.extractor(style)))
        self.content_target = content_out[CONTENT_LAYER]
        self.grams = {n: nst_tf.style_gram(style_out[n]) for n in STYLE_NAMES}
        self.step = tf.function(self._step)

    def cost(self, image):
        out = dict(zip(self.names, self.extractor(image)))
        J_content = nst_tf.compute_content_cost(self.content_target, out[CONTENT_LAYER])
        J_style = nst_tf.weighted_style_cost(
            DEFAULTS.style_layers, lambda n: nst_tf.layer_style_cost_from_gram(self.grams[n], out[n])
        )
        return nst_tf.total_cost(J_content, J_style, DEFAULTS.alpha, DEFAULTS.beta)

    def first_cost(self):
        return float(self.cost(self.image))

    def _step(self):
        with tf.GradientTape() as tape:
            J = self.cost(self.image)
        self.optimizer.apply_gradients([(tape.gradient(J, self.image), self.image)])
        return J

    def __call__(self, n=1):
        for _ in range(n):
            self.step().numpy()


# Sections -------------------------------------------------------------------


def section_step(model, weights, reps, size=(300, 400)):
    content, style = images(*size)
    runners = {
        "nst_tf": NstStep(model, content, style),
        "bare": BareStep(weights, content, style),
        "peer": KerasPeerStep(weights, content, style),
        # The peer's network pools by maximum (2x2, VALID, as Keras builds it); these isolate what that
        # alone changes, and compare nst_tf with the peer on the same network.
        "bare_maxpool": BareStep(weights, content, style, pool=keras_max_pool),
        "nst_tf_maxpool": NstStep(nst_tf.VGG19(weights, pooling="max"), content, style),
    }
    first_costs = {name: runner.first_cost() for name, runner in runners.items()}
    # Same work: the course's network against the bare ceiling, and the max-pooling
    # peer against the bare ceiling with max pooling.
    for a, b in (("nst_tf", "bare"), ("peer", "bare_maxpool"), ("nst_tf_maxpool", "peer")):
        assert np.isclose(first_costs[a], first_costs[b], rtol=1e-4), (a, b, first_costs)
    trace = {name: timed(runner) for name, runner in runners.items()}  # first call: trace + run
    for runner in runners.values():
        runner()  # warm-up
    times = {name: [] for name in runners}
    for _ in range(reps):
        for name, runner in runners.items():
            times[name].append(timed(runner))
    chunk = 20
    chunked = timed(lambda: runners["nst_tf"](chunk)) / chunk
    ratios = {
        "nst_tf/bare": statistics.median(a / b for a, b in zip(times["nst_tf"], times["bare"])),
        "nst_tf/peer": statistics.median(a / b for a, b in zip(times["nst_tf"], times["peer"])),
        "nst_tf_maxpool/peer": statistics.median(a / b for a, b in zip(times["nst_tf_maxpool"], times["peer"])),
        "bare/bare_maxpool": statistics.median(a / b for a, b in zip(times["bare"], times["bare_maxpool"])),
    }
    return {
        "size": f"{size[1]}x{size[0]}",
        "reps": reps,
        "median_step_s": {name: statistics.median(t) for name, t in times.items()},
        "first_call_s": trace,
        "first_costs": first_costs,
        "nst_tf_per_step_in_chunks_of_20_s": chunked,
        "ratios": ratios,
    }


def section_variants(model, reps, long_run_steps, size=(300, 400)):
    content, style = images(*size)
    variants = [("float32", False), ("float32", True), ("bf16", False), ("bf16", True)]
    if gpu_name():
        variants += [("fp16", False), ("fp16", True)]
    rows = []
    for precision, jit in variants:
        # On a GPU, float32 runs twice: TF32 matrix units on (TensorFlow's
        # default on Ampere and later) and off (strict float32).
        for tf32 in (True, False) if gpu_name() and precision == "float32" else (None,):
            if tf32 is not None:
                tf.config.experimental.enable_tensor_float_32_execution(tf32)
            try:
                runner = NstStep(model, content, style, precision, jit)
                first = timed(runner)
            except tf.errors.AbortedError as error:
                # oneDNN held below the CPU's instruction set (ONEDNN_MAX_CPU_ISA) cannot build bf16 kernels.
                print(f"{precision} (XLA {jit}) cannot run here: {str(error).splitlines()[0][:120]}", file=sys.stderr)
                continue
            runner()
            rows.append(
                {
                    "precision": precision if tf32 is None else ("tf32" if tf32 else "float32 (TF32 off)"),
                    "jit_compile": jit,
                    "first_call_s": first,
                    "median_step_s": statistics.median(timed(runner) for _ in range(reps)),
                }
            )
        tf.config.experimental.enable_tensor_float_32_execution(True)
    long_run = {}
    if long_run_steps:
        for precision in ("float32", "bf16"):
            config = dataclasses.replace(
                DEFAULTS, epochs=long_run_steps, print_every=long_run_steps, precision=precision
            )
            transfer = nst_tf.StyleTransfer(nst_tf.StyleCost(model, content, style, config))
            last = list(transfer.run())[-1]
            long_run[precision] = last.total_cost
        long_run["relative_difference"] = abs(long_run["bf16"] - long_run["float32"]) / long_run["float32"]
        long_run["steps"] = long_run_steps
    return {"size": f"{size[1]}x{size[0]}", "variants": rows, "long_run_total_cost": long_run}


def section_optimizers(model, steps, every=5, size=(300, 400)):
    """Total cost against wall time for Adam(2.0) and L-BFGS from the same start."""
    content, style = images(*size)
    curves = {}
    for optimizer in ("adam", "lbfgs"):
        config = dataclasses.replace(DEFAULTS, epochs=steps, print_every=every, optimizer=optimizer)
        cost = nst_tf.StyleCost(model, content, style, config)
        transfer = nst_tf.StyleTransfer(cost)
        transfer.step(1)  # trace and warm up, then start again from the same image
        transfer = nst_tf.StyleTransfer(cost)
        points = [{"iteration": "start", "seconds": 0.0, "total_cost": transfer.costs()["total"]}]
        start = time.perf_counter()
        for progress in transfer.run():
            points.append(
                {
                    "iteration": progress.iteration,
                    "seconds": time.perf_counter() - start,
                    "total_cost": progress.total_cost,
                }
            )
        curves[optimizer] = points
    return {"size": f"{size[1]}x{size[0]}", "curves": curves}


def child_scaling(height, width, reps, precision):
    """Runs in a fresh process: step time and peak memory at one size."""
    model = nst_tf.load_vgg_model(ensure_weights())
    content, style = images(height, width)
    if gpu_name():
        tf.config.experimental.reset_memory_stats("GPU:0")
    baseline = rss_bytes()
    reset_peak_rss()
    runner = NstStep(model, content, style, precision)
    first = timed(runner)
    times = [timed(runner) for _ in range(reps)]
    result = {
        "size": f"{width}x{height}",
        "pixels": width * height,
        "precision": precision,
        "first_call_s": first,
        "median_step_s": statistics.median(times),
        "peak_rss_above_loaded_model_mb": (peak_rss_bytes() - baseline) / 1e6,
    }
    if gpu_name():
        result["peak_gpu_memory_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 1e6
    print(json.dumps(result))


def section_scaling(sizes, reps, budget_s, precisions):
    rows, stopped = [], []
    for precision in precisions:
        for height, width in sizes:
            command = [
                sys.executable,
                __file__,
                "--child-scaling",
                f"{width}x{height}",
                "--reps",
                str(reps),
                "--precision",
                precision,
            ]
            try:
                done = subprocess.run(command, capture_output=True, text=True, timeout=budget_s, check=True)
            except subprocess.TimeoutExpired:
                stopped.append(f"{precision} {width}x{height}: over {budget_s}s; larger sizes skipped")
                break
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    fits = {}
    for precision in precisions:
        points = [(r["pixels"], r["median_step_s"]) for r in rows if r["precision"] == precision]
        if len(points) >= 2:
            x, y = np.log([p for p, _ in points]), np.log([t for _, t in points])
            fits[precision] = float(np.polyfit(x, y, 1)[0])
    return {"rows": rows, "stopped": stopped, "exponent_step_time_vs_pixels": fits}


def child_load():
    tf.constant(1.0) + 1.0  # start TensorFlow's runtime: that is the baseline
    baseline = rss_bytes()
    reset_peak_rss()
    start = time.perf_counter()
    model = nst_tf.load_vgg_model(WEIGHTS)
    seconds = time.perf_counter() - start
    import gc

    gc.collect()
    size = os.path.getsize(WEIGHTS)
    print(
        json.dumps(
            {
                "file_mb": size / 1e6,
                "load_s": seconds,
                "tensorflow_baseline_rss_mb": baseline / 1e6,
                "peak_rss_above_baseline_mb": (peak_rss_bytes() - baseline) / 1e6,
                "peak_over_file_size": (peak_rss_bytes() - baseline) / size,
                "retained_rss_above_baseline_mb": (rss_bytes() - baseline) / 1e6,
                "conv_weights_mb": sum(v.numpy().nbytes for v in model.variables) / 1e6,
            }
        )
    )


def section_load():
    done = subprocess.run([sys.executable, __file__, "--child-load"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# Report -----------------------------------------------------------------------


def markdown(result, command):
    m = result["machine"]
    lines = [
        f"# nst_tf benchmark, {result['date']}",
        "",
        f"Machine: {m['cpu']} (flags: {', '.join(m.get('cpu_flags', [])) or 'unknown'}"
        + "".join(f"; {k}={v}" for k, v in m.get("onednn", {}).items())
        + f"), {m['cpu_cores']} cores, {m['memory_gib']} GiB; GPU: {m['gpu'] or 'none'}; "
        f"Python {m['python']}, TensorFlow {m['tensorflow']}, nst_tf {m['nst_tf']}.",
        f"Command: `{command}`. Full-size synthetic VGG-19 weights.",
        "",
    ]
    if "step" in result:
        lines += _step_lines(result["step"])
    if "variants" in result:
        lines += _variant_lines(result["variants"])
    if "optimizers" in result:
        lines += _optimizer_lines(result["optimizers"])
    if "scaling" in result:
        lines += _scaling_lines(result["scaling"])
    if "load" in result:
        lines += _load_lines(result["load"])
    return "\n".join(lines) + "\n"


def _step_lines(s):
    lines = [
        f"## One optimization step at {s['size']} (median of {s['reps']}, after warm-up)",
        "",
        "| implementation | step (s) | first call, tracing included (s) |",
        "|---|---|---|",
    ]
    for name in s["median_step_s"]:
        lines.append(f"| {name} | {s['median_step_s'][name]:.3f} | {s['first_call_s'][name]:.2f} |")
    lines += [
        "",
        f"nst_tf/bare = **{s['ratios']['nst_tf/bare']:.3f}**, nst_tf/peer = **{s['ratios']['nst_tf/peer']:.3f}**, "
        f"nst_tf_maxpool/peer (the same network) = **{s['ratios'].get('nst_tf_maxpool/peer', float('nan')):.3f}** "
        "(medians of per-repetition ratios). nst_tf in its real use, 20 steps per traced call: "
        f"{s['nst_tf_per_step_in_chunks_of_20_s']:.3f} s per step.",
        "",
        "bare: plain tf.nn ops and TensorFlow's fused Adam kernel; peer: `tf.keras.applications.VGG19(weights=None, "
        "include_top=False)` with six outputs (max pooling, as Keras builds it), the same costs and Adam(2.0); "
        "bare_maxpool: bare with the peer's max pooling instead of the course's average pooling "
        f"(bare/bare_maxpool = {s['ratios']['bare/bare_maxpool']:.3f}: what the pooling alone costs).",
        "",
    ]
    return lines


def _variant_lines(v):
    lines = [
        f"## Precision and XLA at {v['size']}",
        "",
        "| precision | XLA | step (s) | first call (s) |",
        "|---|---|---|---|",
    ]
    f32 = next(
        r["median_step_s"] for r in v["variants"] if r["precision"].startswith("float32") and not r["jit_compile"]
    )
    for r in v["variants"]:
        lines.append(
            f"| {r['precision']} | {'yes' if r['jit_compile'] else 'no'} | {r['median_step_s']:.3f} "
            f"({f32 / r['median_step_s']:.2f}x float32) | {r['first_call_s']:.2f} |"
        )
    shown = {(r["precision"], r["jit_compile"]) for r in v["variants"]}
    missing = [f"{p} {'with' if j else 'without'} XLA" for p in ("bf16",) for j in (False, True) if (p, j) not in shown]
    if missing:
        lines += ["", f"Not runnable on this machine: {', '.join(missing)} (oneDNN cannot build bf16 kernels here)."]
    lr = v["long_run_total_cost"]
    if lr:
        lines += [
            "",
            f"After {lr['steps']} steps from the same start: total cost float32 {lr['float32']:.6g}, "
            f"bf16 {lr['bf16']:.6g}, relative difference {100 * lr['relative_difference']:.2f}%.",
        ]
    return lines


def _optimizer_lines(op):
    shown = [p["iteration"] for p in op["curves"]["adam"] if p["iteration"] == "start" or p["iteration"] % 10 == 0]
    lines = [
        "",
        f"## Adam(2.0) and L-BFGS from the same start at {op['size']}",
        "",
        "| optimizer | " + " | ".join(f"after iteration {i}" if i != "start" else "start" for i in shown) + " |",
        "|---|" + "---|" * len(shown),
    ]
    for name, points in op["curves"].items():
        cells = [f"{p['total_cost']:.3g} ({p['seconds']:.0f} s)" for p in points if p["iteration"] in shown]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("\nEach cell: total cost (wall time since the start; tracing excluded).")
    return lines


def _scaling_lines(sc):
    lines = [
        "",
        "## Scaling (each size in a fresh process)",
        "",
        "| precision | size | step (s) | peak memory above the loaded model (MB) |",
        "|---|---|---|---|",
    ]
    for r in sc["rows"]:
        memory = r.get("peak_gpu_memory_mb", r["peak_rss_above_loaded_model_mb"])
        lines.append(f"| {r['precision']} | {r['size']} | {r['median_step_s']:.3f} | {memory:.0f} |")
    for precision, exponent in sc["exponent_step_time_vs_pixels"].items():
        lines.append(f"\nFitted exponent of step time against pixel count ({precision}): {exponent:.2f}.")
    for note in sc["stopped"]:
        lines.append(f"\nStopped: {note}.")
    return lines


def _load_lines(ld):
    return [
        "",
        "## Loading the .mat",
        "",
        f"File {ld['file_mb']:.0f} MB, loaded in {ld['load_s']:.1f} s. Peak resident memory "
        f"{ld['peak_rss_above_baseline_mb']:.0f} MB above TensorFlow's baseline "
        f"({ld['peak_over_file_size']:.2f}x the file); afterwards {ld['retained_rss_above_baseline_mb']:.0f} MB "
        f"above it (conv weights: {ld['conv_weights_mb']:.0f} MB).",
    ]


SECTIONS = ("step", "variants", "optimizers", "scaling", "load")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and sizes")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--child-scaling", metavar="WxH")
    parser.add_argument("--child-load", action="store_true")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma-separated subset of: " + ", ".join(SECTIONS)
    )
    args = parser.parse_args()
    if args.child_scaling:
        width, height = map(int, args.child_scaling.split("x"))
        return child_scaling(height, width, args.reps or 5, args.precision)
    if args.child_load:
        return child_load()

    reps = args.reps or (3 if args.quick else 10)
    gpu = gpu_name()
    sizes = [(128, 128), (256, 256), (300, 400), (512, 512), (1024, 1024)] + ([(1080, 1920)] if gpu else [])
    if args.quick:
        sizes = sizes[:3]
    weights = nst_tf.read_vgg19_mat(ensure_weights())
    model = nst_tf.VGG19(weights)
    result = {"date": datetime.date.today().isoformat(), "machine": machine()}
    runs = {
        "step": lambda: section_step(model, weights, reps),
        "variants": lambda: section_variants(model, reps, 0 if args.quick else 200),
        "optimizers": lambda: section_optimizers(model, 20 if args.quick else 60),
        "scaling": lambda: section_scaling(sizes, 3 if args.quick else 5, budget_s=240, precisions=["float32", "bf16"]),
        "load": section_load,
    }
    chosen = [name for name in SECTIONS if name in args.sections.split(",")]
    for name in chosen:
        print(f"{name} ...", file=sys.stderr)
        result[name] = runs[name]()

    os.makedirs(RESULTS, exist_ok=True)
    partial = "" if len(chosen) == len(SECTIONS) else "-" + "-".join(chosen)
    stem = os.path.join(RESULTS, f"{device_label()}-{result['date']}" + ("-quick" if args.quick else "") + partial)
    command = (
        "python benchmarks/bench.py"
        + (" --quick" if args.quick else "")
        + (f" --sections {','.join(chosen)}" if partial else "")
    )
    env = " ".join(f"{k}={v}" for k, v in result["machine"]["onednn"].items())
    command = f"{env} {command}".strip()
    with open(stem + ".json", "w") as handle:
        json.dump(result, handle, indent=2)
    report = markdown(result, command)
    with open(stem + ".md", "w") as handle:
        handle.write(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
