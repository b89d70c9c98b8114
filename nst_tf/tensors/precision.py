"""The network's precision: names (``PRECISIONS``) to dtypes, and what "auto" means on this machine.

Gram matrices and costs are always float32 (``costs.py`` says why). "auto" chooses bf16 on CPUs with AMX, the
only CPUs where it was measured faster than float32 (even with AVX512_BF16 it was slower), and on GPUs with
bfloat16 tensor cores (not measured); see ``benchmarks/results/cpu-*.md`` and README.md's Benchmarks section.
"""

import functools
import os

from ..ground.errors import NSTError
from ..plan.config import PRECISIONS

#: TensorFlow dtype name of each precision other than "auto".
DTYPE_NAMES = {"float32": "float32", "bf16": "bfloat16", "fp16": "float16"}

# CPU flags (as Linux's /proc/cpuinfo spells them) with which each reduced precision is native.
_NATIVE_CPU_FLAGS = {"bf16": ("amx_bf16",), "fp16": ("amx_fp16",)}

# NVIDIA compute capability from which each reduced precision has tensor-core matrix products: bfloat16 from
# Ampere (8.0), float16 from Volta (7.0).
_NATIVE_GPU_CAPABILITY = {"bf16": (8, 0), "fp16": (7, 0)}


def compute_dtype(precision):
    """The ``tf.DType`` the network runs in for ``precision`` ("auto" resolved first)."""
    from .quiet import tensorflow as tf

    return tf.as_dtype(DTYPE_NAMES[resolve(precision)])


@functools.lru_cache(maxsize=4)
def _cpuinfo_value(keys, path="/proc/cpuinfo"):
    """The value of the first line of ``path`` starting with one of ``keys``; None where there is none or the
    file cannot be read."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(keys):
                    return line.split(":", 1)[1]
    except OSError:
        pass
    return None


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags, lower case, as a frozenset; empty where they cannot be read."""
    return frozenset((_cpuinfo_value(("flags", "Features"), path) or "").lower().split())


def _gpu_capabilities():
    """Compute capabilities of the GPUs TensorFlow sees, e.g. [(9, 0)]; [] without one."""
    from .quiet import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(device).get("compute_capability")
        found.append(tuple(capability) if capability else (0, 0))
    return found


def is_native(precision, gpus=None, flags=None):
    """Whether this machine computes ``precision`` in hardware (float32 always does); ``gpus`` (compute
    capabilities) and ``flags`` (CPU flags) default to this machine's; with a GPU present, the GPU decides."""
    if precision == "float32":
        return True
    gpus = _gpu_capabilities() if gpus is None else gpus
    if gpus:
        return all(capability >= _NATIVE_GPU_CAPABILITY[precision] for capability in gpus)
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in _NATIVE_CPU_FLAGS[precision]) and _onednn_allows(precision)


def _onednn_allows(precision):
    """False when ONEDNN_MAX_CPU_ISA holds oneDNN below the instructions ``precision`` needs (say ``AVX2`` on an
    AVX512-BF16 Xeon): oneDNN then cannot build bfloat16 convolutions at all, and "auto" must choose float32."""
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "DEFAULT").upper()
    needs = {"bf16": ("BF16", "AMX", "FP16", "AVX10"), "fp16": ("FP16", "AMX_FP16", "AVX10")}[precision]
    return cap in ("DEFAULT", "ALL") or any(part in cap for part in needs)


def resolve(precision, gpus=None, flags=None):
    """``precision`` with "auto" replaced by bf16 where it is native here, else float32; ``NSTError`` for one not
    in ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise NSTError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if is_native("bf16", gpus, flags) else "float32"


def emulation_note(precision, gpus=None, flags=None):
    """One sentence saying why ``precision`` will be slow here, or None when it is native; ``NSTError`` as
    ``resolve`` raises."""
    precision = resolve(precision, gpus, flags)
    if is_native(precision, gpus, flags):
        return None
    gpus = _gpu_capabilities() if gpus is None else gpus
    if gpus:
        need = ".".join(map(str, _NATIVE_GPU_CAPABILITY[precision]))
        return (
            f"{precision} is not accelerated on this GPU (compute capability below {need}); likely slower than float32"
        )
    names = " or ".join(flag.upper() for flag in _NATIVE_CPU_FLAGS[precision])
    return (
        f"{precision} is not accelerated on this CPU (no {names}) and is slower than float32 "
        "(1.5x measured with AVX512_BF16 alone, 9x on an AVX2-only AMD EPYC)"
    )


def jit_note(gpus=None):
    """One sentence saying why XLA will be slow here, or None where it is not known to be."""
    gpus = _gpu_capabilities() if gpus is None else gpus
    if gpus:
        return None
    return "XLA (jit_compile) is slower on CPUs: 2.4x to 4x per step measured on Intel and AMD"


#: Files a machine with an NVIDIA driver has, whether or not TensorFlow sees its GPU.
_NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidia0")


def device_line(precision, gpus=None):
    """Where a run computes, in words: "GPU (NVIDIA H100 80GB HBM3) in bf16" or "CPU (AMD EPYC, 2 cores) in
    float32" (``precision`` with "auto" resolved), plus how to get the GPU used where a driver is installed but
    TensorFlow sees none. ``gpus``: the names of the GPUs TensorFlow sees (default: this machine's)."""
    gpus = _gpu_names() if gpus is None else gpus
    dtype = resolve(precision)
    if gpus:
        more = f", the first of {len(gpus)}" if len(gpus) > 1 else ""
        return f"GPU ({gpus[0]}{more}) in {dtype}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    line = f"CPU ({_cpu_model()}, {cores} core{'s' * (cores != 1)}) in {dtype}"
    if any(os.path.exists(path) for path in _NVIDIA_DRIVER_FILES):
        line += '; an NVIDIA driver is installed but TensorFlow sees no GPU: pip install "tensorflow[and-cuda]"'
    return line


def _gpu_names():
    """The names of the GPUs TensorFlow sees, e.g. ["NVIDIA H100 80GB HBM3"]; [] without one."""
    from .quiet import tensorflow as tf

    devices = tf.config.list_physical_devices("GPU")
    return [tf.config.experimental.get_device_details(d).get("device_name") or d.name for d in devices]


def _cpu_model(path="/proc/cpuinfo"):
    """The CPU's model name as the system gives it; "unknown model" where it cannot be read."""
    model = (_cpuinfo_value(("model name", "Model", "Hardware"), path) or "").strip()
    if model:
        return model
    import platform

    return platform.processor() or "unknown model"
