"""The teaching notebooks run headless, teach what they say, and are committed with small, clean outputs.

A fresh run (``notebooks/execute.py``'s ``execute``, the run that makes the committed outputs) must
print what each notebook teaches, keep TensorFlow's log lines and absolute paths out of its outputs,
and show the difference each comparison is about: every ``comparison:`` line must report a cost at
least halved and images at least 10 of 255 apart on average. The committed notebooks must hold the
outputs of their current cells (the digest of the sources the script stores), be small, and be as
clean; their numbers are illustrations, made on some CPU, and are not compared with a fresh run's.
"""

import base64
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

import nst_tf

# Run again by .ci/run with oneDNN held to other instruction sets and with oneDNN off.
pytestmark = pytest.mark.numeric

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOK_DIR / "execute.py")
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)

NOTEBOOKS = execute.NOTEBOOKS
# What the second edition's notebook needs to check the course's train_step values.
SECOND_EDITION_FILES = [
    "pretrained-model/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "images/louvre_small.jpg",
    "images/monet.jpg",
]
# What the CS231n notebook needs to check the assignment's values (the checks file beside the notebook).
CS231N_FILES = [
    "pretrained-model/squeezenet1_1-b8a52dc0.pth",
    "notebooks/style-transfer-checks.npz",
    "images/tubingen.jpg",
    "images/starry_night.jpg",
]
#: A committed notebook, outputs included, stays under this many bytes; each figure under a fifth of it.
MAX_NOTEBOOK_BYTES = 400_000
MAX_FIGURE_BYTES = 80_000
#: How many ``comparison:`` lines each notebook prints.
COMPARISONS = {
    "Art_Generation_with_Neural_Style_Transfer.ipynb": 1,  # G against the start
    "Second_edition_with_nst_tf.ipynb": 1,  # the short run's last image against its start
    "Your_own_images.ipynb": 3,  # four alphas, each against the one before
    "CS231n_style_transfer.ipynb": 2,  # the Starry Night run and the feature inversion, each against its start
    "Styles_by_region.ipynb": 1,  # two masked styles against the same two without masks
    "Fast_style_models.ipynb": 1,  # the trained network against an untrained one of the same shape
}
COMPARISON = re.compile(
    r"^comparison: (?P<what>.+): (?P<measure>[a-z ]+) (?P<before>\S+) -> (?P<after>\S+) \(\S+x\), "
    r"images differ by (?P<difference>\S+) of 255 on average$",
    re.MULTILINE,
)


def test_the_notebook_folder_holds_exactly_the_documented_notebooks():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)
    assert sorted(COMPARISONS) == sorted(NOTEBOOKS)


def check_comparisons(name, text):
    """Each comparison shows its difference: the cost it is about at least halved, the pixels 10 of 255 apart."""
    found = list(COMPARISON.finditer(text))
    assert len(found) == COMPARISONS[name], [m[0] for m in found]
    for match in found:
        before, after, difference = (float(match[key]) for key in ("before", "after", "difference"))
        assert 0 <= after <= before / 2, match[0]
        assert difference >= 10, match[0]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_holds_small_clean_outputs_of_its_cells(name):
    path = NOTEBOOK_DIR / name
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    rerun = f"run `python notebooks/execute.py {name}` and commit the result"
    saved = notebook.metadata.get("nst_tf", {})
    assert saved.get("sources_sha256") == execute.sources_digest(notebook), f"outputs older than the cells: {rerun}"
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), rerun
    assert not [cell for cell in notebook.cells if "execution" in cell.metadata], "timestamps: " + rerun
    assert execute.problems(notebook) == [], rerun
    figures = 0
    for cell in code:
        for output in cell.outputs:
            for mime, data in output.get("data", {}).items():
                if mime.startswith("image/"):
                    figures += 1
                    assert mime in ("image/png", "image/jpeg") and len(base64.b64decode(data)) < MAX_FIGURE_BYTES
    assert figures >= 2
    text = execute.output_text(notebook)
    # Which weights made the pictures, said where a reader sees it.
    assert "SYNTHETIC" in text or "Using the real" in text
    check_comparisons(name, text)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_headless_and_teaches_what_it_says(name):
    notebook = execute.execute(name)  # raises CellExecutionError, naming the cell, on any error
    assert execute.problems(notebook) == []  # no TensorFlow log lines, no absolute paths
    execute.tidy(notebook)
    nbformat.validate(notebook)
    assert len(nbformat.writes(notebook).encode()) < MAX_NOTEBOOK_BYTES
    text = execute.output_text(notebook)
    assert f"nst_tf {nst_tf.__version__} |" in text  # the setup cell ran
    check_comparisons(name, text)
    if name.startswith("Art"):
        assert "conv4_2" in text and "(1, 38, 50," in text  # the graph's shapes were printed
        # The graded checks printed their lines (each line's asserts ran in the cell).
        assert "J_content (first edition)" in text and "course 6.76559" in text
        assert "J_style_layer (second edition)" in text and "course 14.017804" in text
        # model_nn printed the course's report lines and saved the course's files.
        for line in ("Iteration 0 :\ntotal cost = ", "\ncontent cost = ", "\nstyle cost = ", "Iteration 180 :\n"):
            assert line in text
        assert "'0.png', '20.png'" in text and "'180.png', 'generated_image.jpg']" in text
        assert "course 5.05035e+09" in text
    if name.startswith("Second"):
        assert "J_content (second edition)" in text and "course 7.0568767" in text
        assert "J_style_layer (second edition)" in text and "course 14.017804" in text
        assert "Epoch 0 \n" in text and "'image_0.jpg'" in text
        assert "train_step (course's code):" in text
        if all((ROOT / path).exists() for path in SECOND_EDITION_FILES):
            assert "Branch: real weights" in text and "The course's train_step check passed" in text
        else:
            assert "Branch: synthetic weights" in text and "Skipped the course's train_step values" in text
    if name.startswith("Your"):
        # The coarse-to-fine strip: one image per scale, each twice the size of the one before.
        assert "scales: ['50x38', '100x75', '200x150']" in text
        # stylize_many over three photos of one size: one network, one trace.
        assert "traced: [True, False, False]" in text
        # The command's run: its report lines, and its files in the notebook's temporary folder.
        assert "Iteration 30 :\n" in text and "['0.png', '30.png', 'generated_image.jpg']" in text
    if name.startswith("CS231n"):
        # SqueezeNet's layers: torchvision's index, the TF edition's (one lower), nst_tf's name, the shape at 192.
        assert re.search(r"^ +0 +- +conv1 +\(1, \d+, \d+, 64\) *$", text, re.MULTILINE)
        assert re.search(r"^ +3 +2 +fire2 +\(1, \d+, \d+, 128\) +content$", text, re.MULTILINE)
        assert re.search(r"^ +7 +6 +fire5 +\(1, \d+, \d+, 256\) +style$", text, re.MULTILINE)
        # The assignment's four checks, set up as it sets them up, each against NumPy on the same activations.
        assert "Gram matrix shape (1, 128, 128)" in text
        assert text.count("rel_error vs NumPy float64") == 4
        for value in ("32436.986", "0.08948", "44512.67", "303.2237"):
            assert f"assignment {value}" in text
        # The preset's run, reported as the command reports it, and the command's own run.
        assert "CS231n's Starry Night run" in text and "learning_rate_steps ((180, 0.1),)" in text
        assert re.search(r"^Iteration 0: total \S+ = content \S+ \+ style \S+ \+ tv \S+$", text, re.MULTILINE)
        assert "python -m nst_tf --preset cs231n_starry_night --shorter_side" in text
        assert "; saved output/generated_image.jpg" in text
        assert "style weights: [0.0, 0.0, 0.0, 0.0] | start: uniform" in text  # the feature inversion
        if all((ROOT / path).exists() for path in CS231N_FILES):
            assert "Branch: real weights" in text and "The assignment's four checks passed" in text
            assert "['0.png', '100.png', 'generated_image.jpg']" in text
        else:
            assert "Branch: synthetic weights" in text and "Skipped the assignment's values" in text
            assert "['0.png', '20.png', '40.png', 'generated_image.jpg']" in text
