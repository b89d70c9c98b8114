"""TensorFlow loads without its C++ start-up lines whichever name of nst_tf needs it first, in a process and in
a Jupyter kernel, unless ``TF_CPP_MIN_LOG_LEVEL`` asks for them (0 or 1): then they show."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
#: TensorFlow's C++ log lines, absl's notice and CUDA probing.
NOISE = re.compile(r"^[IWEF]\d{4} |oneDNN|(?i:cuda)|This TensorFlow binary|absl", re.MULTILINE)

#: A tiny stylization on synthetic weights after the first name touched, none of it printing.
STYLIZE = """
import numpy as np
from nst_tf.plan.synthetic import write_vgg19_mat
weights = write_vgg19_mat({weights!r}, width_divisor=16, seed=3)
pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
result = nst_tf.stylize_image(pixels, pixels[::-1], iterations=2, weights=weights, progress=False,
                              size=nst_tf.ImageSize(64, 48))
print("stylized", result.image.shape)
"""


def environment(level):
    """This process's environment with ``TF_CPP_MIN_LOG_LEVEL`` as the user set it (None: unset)."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    if level is not None:
        env["TF_CPP_MIN_LOG_LEVEL"] = level
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


FIRSTS = [
    "import nst_tf; nst_tf.compute_content_cost",  # (nst_tf.StyleCost first: test_a_level_the_user_set_wins)
    "import nst_tf; nst_tf.presets.PRESETS['first_edition'].load_model",  # no TensorFlow until the model
    "from nst_tf.objective.whole import StyleCost; import nst_tf",  # a module imported directly
    # docs/library.md's order: the user's own import of TensorFlow after nst_tf has loaded it
    "import nst_tf; from nst_tf import compute_content_cost; import tensorflow as tf; tf.constant(1.0) + 1",
]
#: Each case: (the code run first, TF_CPP_MIN_LOG_LEVEL as the user set it).
CASES = [(first, None) for first in FIRSTS] + [("import nst_tf; nst_tf.StyleCost", level) for level in ("0", "2")]


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """Every case's Python process, started together: each spends most of its time importing TensorFlow on one
    core, so side by side they take about what a third of them take in a row."""
    folder = tmp_path_factory.mktemp("quiet")
    started = {}
    for index, (first, level) in enumerate(CASES):
        code = first + STYLIZE.format(weights=str(folder / f"w{index}.mat"))
        started[first, level] = subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(level),
        )
    yield started
    for process in started.values():
        process.kill()
        process.communicate()


def _finished(processes, first, level):
    """(exit status, standard output, standard error) of the case's process."""
    out, err = processes[first, level].communicate(timeout=600)
    return processes[first, level].returncode, out, err


@pytest.mark.parametrize("first", FIRSTS)
def test_no_tensorflow_lines_whichever_name_comes_first(first, processes):
    status, out, err = _finished(processes, first, None)
    assert status == 0, err
    assert "stylized (48, 64, 3)" in out
    assert not NOISE.search(err), err


@pytest.mark.parametrize("level", ["0", "2"])
def test_a_level_the_user_set_wins(level, processes):
    status, _, err = _finished(processes, "import nst_tf; nst_tf.StyleCost", level)
    assert status == 0, err
    # 0 asks for INFO lines: TensorFlow's start-up lines show; 2 asks for errors only: none of them.
    assert bool(NOISE.search(err)) == (level == "0"), err


def kernel_environment(level):
    """``environment(level)`` for a Jupyter kernel: without PYTEST_CURRENT_TEST, under which ipykernel does not
    forward file descriptor 2 to the cell, as it does in Jupyter."""
    return {key: value for key, value in environment(level).items() if key != "PYTEST_CURRENT_TEST"}


@pytest.mark.parametrize("level", [None, "0"])
def test_a_jupyter_cell_shows_tensorflows_lines_only_when_asked(level):
    cell = nbformat.v4.new_code_cell("import nst_tf\nnst_tf.StyleCost\nprint(float(nst_tf.gram_matrix([[1.0]])[0, 0]))")
    notebook = nbformat.v4.new_notebook(cells=[cell])
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute(env=kernel_environment(level))
    text = "".join(output.get("text", "") for output in cell.outputs)
    assert "1.0" in text
    assert bool(NOISE.search(text)) == (level == "0"), text


#: Layers a user's code calls into directly, where TensorFlow may load first: no import of it in any function.
LIBRARY_LAYERS = ("ground", "plan", "tensors", "objective", "loop", "runs")


def tensorflow_imports(path, text):
    """Line numbers of ``import tensorflow`` and ``from tensorflow import ...`` in ``text``, the module at ``path``:
    anywhere in a module of the library's layers, at module level elsewhere (the application's jobs load
    TensorFlow, quietly, before they run)."""
    tree = ast.parse(text, filename=str(path))
    library = path.relative_to(ROOT / "nst_tf").parts[0] in LIBRARY_LAYERS
    for node in ast.walk(tree) if library else tree.body:
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module == "tensorflow" and node.level == 0:
            names = ["tensorflow"]
        if "tensorflow" in names:
            yield node.lineno


def test_no_module_of_nst_tf_imports_tensorflow_but_through_tensors_quiet():
    quiet = ROOT / "nst_tf" / "tensors" / "quiet.py"
    found = []
    for path in sorted((ROOT / "nst_tf").rglob("*.py")):
        if path != quiet:
            found += [f"{path.relative_to(ROOT)}:{line}" for line in tensorflow_imports(path, path.read_text())]
    assert found == []


@pytest.mark.parametrize(
    "module, added",
    [
        ("tensors/precision.py", "def added():\n    import tensorflow as tf\n"),  # in a function of the library
        ("app/notebook.py", "from tensorflow import nn\n"),  # at module level in the application
    ],
)
def test_the_import_check_finds_a_direct_import(module, added):
    path = ROOT / "nst_tf" / module
    assert list(tensorflow_imports(path, path.read_text() + "\n\n" + added)) != []
