"""Precision: names to dtypes, what "auto" picks on each kind of hardware, and the warnings."""

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import NSTError, StyleCost, StyleTransferConfig
from nst_tf.tensors import precision
from nst_tf.app.cli import main
from nst_tf.plan.config import PRECISIONS


@pytest.fixture(autouse=True)
def onednn_uncapped(monkeypatch):
    """These tests describe the hardware by its flags; a oneDNN cap in the environment is part of it too."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


INTEL_AMX = frozenset({"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "amx_fp16"})
AMD_AVX2 = frozenset({"avx2", "fma"})


@pytest.mark.parametrize(
    "gpus, flags, expected",
    [
        ([], INTEL_AMX, "bf16"),
        ([], frozenset({"avx512f", "avx512_bf16"}), "float32"),  # measured slower than float32 without AMX
        ([], AMD_AVX2, "float32"),
        ([], frozenset(), "float32"),  # flags unknown: the safe choice
        ([(9, 0)], AMD_AVX2, "bf16"),  # H100: the GPU decides
        ([(8, 0)], frozenset(), "bf16"),
        ([(7, 5)], INTEL_AMX, "float32"),  # Turing has no bfloat16 units
    ],
)
def test_auto_picks_bf16_only_where_the_hardware_has_it(gpus, flags, expected):
    assert precision.resolve("auto", gpus=gpus, flags=flags) == expected


@pytest.mark.parametrize("name", ["float32", "bf16", "fp16"])
def test_explicit_precisions_are_kept(name):
    assert precision.resolve(name, gpus=[], flags=AMD_AVX2) == name


def test_every_precision_name_maps_to_a_floating_dtype():
    assert set(precision.DTYPE_NAMES) == set(PRECISIONS) - {"auto"}
    assert precision.compute_dtype("bf16") == tf.bfloat16 and precision.compute_dtype("fp16") == tf.float16
    with pytest.raises(NSTError, match="precision must be one of float32, bf16, fp16, auto; got 'int8'"):
        precision.resolve("int8")


@pytest.mark.parametrize(
    "name, gpus, flags, emulated",
    [
        ("bf16", [], AMD_AVX2, True),
        ("bf16", [], INTEL_AMX, False),
        ("fp16", [], AMD_AVX2, True),
        ("fp16", [], INTEL_AMX, False),
        ("bf16", [(7, 5)], INTEL_AMX, True),
        ("fp16", [(7, 5)], AMD_AVX2, False),
        ("float32", [], frozenset(), False),
    ],
)
def test_emulation_is_named_with_its_reason(name, gpus, flags, emulated):
    note = precision.emulation_note(name, gpus=gpus, flags=flags)
    assert (note is not None) == emulated
    if emulated:
        assert "not accelerated" in note and name in note


def test_xla_is_flagged_on_cpus_only():
    assert "slower on CPUs" in precision.jit_note(gpus=[])
    assert precision.jit_note(gpus=[(9, 0)]) is None


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu AVX2 fma avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert precision.cpu_flags(str(info)) == {"fpu", "avx2", "fma", "avx512_bf16"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_auto_builds_the_network_in_the_precision_it_picks(model, images, monkeypatch):
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    for flags, dtype in ((INTEL_AMX, tf.bfloat16), (AMD_AVX2, tf.float32)):
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: flags)
        cost = StyleCost(model, *images, StyleTransferConfig(precision="auto"))
        assert cost.model.dtype == dtype


@pytest.mark.parametrize("option", [["--precision", "bf16"], ["--jit_compile"]])
def test_slow_choices_print_one_warning_line_and_go_on(cli_args, capsys, monkeypatch, option):
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda: AMD_AVX2)
    assert main(cli_args(*option, epochs=1)) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("nst-tf: warning: "), warnings


def test_native_choices_print_no_warning(cli_args, capsys, monkeypatch):
    monkeypatch.setattr(precision, "_gpu_capabilities", lambda: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda: INTEL_AMX)
    assert main(cli_args("--precision", "auto", epochs=1)) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("name, rtol", [("bf16", 0.05), ("fp16", 0.01)])
def test_reduced_precision_networks_keep_float32_costs_close(model, images, name, rtol):
    content, style = images
    image = np.asarray(content + np.random.default_rng(1).normal(0, 20, content.shape), np.float32)
    exact = StyleCost(model, content, style, StyleTransferConfig())(image)
    reduced = StyleCost(model, content, style, StyleTransferConfig(precision=name))(image)
    assert list(reduced) == list(exact) == ["total", "content", "style"]
    for a, b in ((reduced[name], exact[name]) for name in exact):
        assert a.dtype == tf.float32
        # bfloat16 keeps 8 mantissa bits and float16 11: a few per cent and a few per mille of a cost.
        np.testing.assert_allclose(float(a), float(b), rtol=rtol)


def test_auto_keeps_float32_where_onednn_is_held_below_bfloat16(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert precision.resolve("auto", gpus=[], flags=INTEL_AMX) == "float32"
    assert precision.emulation_note("bf16", gpus=[], flags=INTEL_AMX) is not None
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert precision.resolve("auto", gpus=[], flags=INTEL_AMX) == "bf16"
