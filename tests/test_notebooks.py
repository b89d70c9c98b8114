"""The teaching notebooks run headless from top to bottom, print what they teach, and are committed clean."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import nst_tf

# Run again by .ci/run with oneDNN held to other instruction sets and with oneDNN off.
pytestmark = pytest.mark.numeric

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = [
    "Art_Generation_with_Neural_Style_Transfer.ipynb",
    "Second_edition_with_nst_tf.ipynb",
    "Your_own_images.ipynb",
]
# What the second edition's notebook needs to check the course's train_step values.
SECOND_EDITION_FILES = [
    "pretrained-model/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "images/louvre_small.jpg",
    "images/monet.jpg",
]


def test_the_notebook_folder_holds_exactly_the_documented_notebooks():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_small_and_without_outputs(name):
    path = NOTEBOOK_DIR / name
    assert path.stat().st_size < 1_000_000
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def executed_text(name, monkeypatch):
    """Runs the notebook in notebooks/ and returns everything its code cells printed."""
    # The kernel imports nst_tf from this checkout, whatever copy the environment has installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    notebook = nbformat.read(NOTEBOOK_DIR / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    return "".join(
        output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_without_errors(name, monkeypatch):
    text = executed_text(name, monkeypatch)
    assert f"nst_tf {nst_tf.__version__} |" in text  # the setup cell ran
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
