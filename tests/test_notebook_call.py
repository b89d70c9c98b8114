"""``nst_tf.stylize_image``: one call for a notebook, with a progress bar, a preview updated in place and the
costs of each report; in-process on small synthetic weights, and in a Jupyter kernel (nbclient)."""

import base64
import io
import os
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

import nst_tf
from nst_tf.app.notebook import TQDM_HINT

ROOT = Path(__file__).resolve().parent.parent
SIZE = nst_tf.ImageSize(64, 48)
#: A seeded config of the first edition, small enough to run in a second.
CONFIG = nst_tf.StyleTransferConfig(epochs=5, print_every=5, seed=0)


def run(workspace, weights, **options):
    """``stylize_image`` on the workspace's images at 64x48, its bar written to a string; (result, bar text)."""
    out = io.StringIO()
    options = {"preset": CONFIG, "size": SIZE, "weights": weights, "out": out, **options}
    result = nst_tf.stylize_image(workspace / "content.png", workspace / "style.png", **options)
    return result, out.getvalue()


def test_returns_the_image_at_its_size_and_the_costs_of_each_report(workspace, new_weights_file):
    result, _ = run(workspace, new_weights_file, iterations=5, preview_every=2)
    assert result.image.shape == (48, 64, 3) and result.image.dtype == np.uint8
    assert result.iterations == [0, 2, 4]  # every preview_every-th and the last
    assert set(result.costs) == {"total", "content", "style"}
    for values in result.costs.values():
        assert len(values) == 3 and np.all(np.isfinite(values))
    # The course's J = alpha J_content + beta J_style, from the recorded terms.
    expected = 10 * np.array(result.costs["content"]) + 40 * np.array(result.costs["style"])
    np.testing.assert_allclose(result.costs["total"], expected, rtol=1e-5)
    assert result.costs["total"][-1] < result.costs["total"][0]


def test_the_bar_counts_every_iteration_to_the_total(workspace, new_weights_file):
    _, bar = run(workspace, new_weights_file, iterations=7, preview_every=3)
    states = re.findall(r"(\d+)/(\d+) \[", bar)
    assert states and {total for _, total in states} == {"7"}
    counts = [int(done) for done, _ in states]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 7
    assert "total cost" in bar


def test_without_tqdm_a_line_per_report_says_how_to_get_the_bar(workspace, new_weights_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    _, text = run(workspace, new_weights_file, iterations=5, preview_every=2)
    lines = text.splitlines()
    assert lines[0] == f"nst_tf: {TQDM_HINT}" and "pip install tqdm" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == ["iteration 1/5", "iteration 3/5", "iteration 5/5"]


def test_no_bar_writes_nothing(workspace, new_weights_file):
    _, text = run(workspace, new_weights_file, progress=False)
    assert text == ""


def test_pixels_and_normalized_images_run_as_their_files_do(workspace, new_weights_file):
    by_path, _ = run(workspace, new_weights_file)
    content, style = (nst_tf.read_image(workspace / name) for name in ("content.png", "style.png"))
    out = io.StringIO()
    by_pixels = nst_tf.stylize_image(content, style, CONFIG, size=SIZE, weights=new_weights_file, out=out)
    np.testing.assert_array_equal(by_pixels.image, by_path.image)
    normalized = nst_tf.reshape_and_normalize_image(nst_tf.fit_image(content, 64, 48))
    style_normalized = nst_tf.reshape_and_normalize_image(nst_tf.fit_image(style, 64, 48))
    by_batch = nst_tf.stylize_image(normalized, [style_normalized], CONFIG, weights=new_weights_file, out=out)
    np.testing.assert_array_equal(by_batch.image, by_path.image)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"preset": "third_edition"}, "preset must be one of"),
        ({"preset": 3}, "preset must be a preset's name"),
        ({"iterations": 0}, "iterations must be a positive whole number"),
        ({"preview_every": 2.5}, "preview_every must be a positive whole number"),
        ({"size": (64, 48)}, "size must be an ImageSize"),
    ],
)
def test_bad_arguments_are_refused_naming_them(workspace, new_weights_file, options, message):
    with pytest.raises(nst_tf.NSTError, match=re.escape(message)):
        run(workspace, new_weights_file, **options)


def test_a_bad_image_array_is_refused_naming_it(new_weights_file):
    with pytest.raises(nst_tf.NSTError, match=r"^content must be an image path"):
        nst_tf.stylize_image(np.zeros((48, 64)), np.zeros((48, 64, 3), np.uint8), weights=new_weights_file)


def test_plot_draws_each_terms_costs_against_the_iterations(workspace, new_weights_file):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result, _ = run(workspace, new_weights_file, iterations=5, preview_every=2)
    ax = result.plot()
    try:
        assert [line.get_label() for line in ax.get_lines()] == list(result.costs)
        for line, values in zip(ax.get_lines(), result.costs.values()):
            assert list(line.get_xdata()) == [0, 2, 4] and list(line.get_ydata()) == values
        assert ax.get_yscale() == "log"
    finally:
        plt.close(ax.figure)


#: The notebook's cell: the call with a preview every 2 iterations, then the result's pixels' checksum.
CELL = """\
import nst_tf
result = nst_tf.stylize_image({content!r}, {style!r}, nst_tf.StyleTransferConfig(seed=0), iterations=7,
                              preview_every=2, weights={weights!r}, size=nst_tf.ImageSize(64, 48))
print("result", result.image.shape, int(result.image.astype("int64").sum()), result.iterations)
"""


def test_in_jupyter_a_widget_bar_and_a_preview_updated_to_the_last_image(workspace, new_weights_file):
    # The kernel starts without TF_CPP_MIN_LOG_LEVEL (the tests set it): nst_tf keeps TensorFlow's lines out
    # itself; and without PYTEST_CURRENT_TEST, under which ipykernel would not forward file descriptor 2.
    env = {
        key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTEST_CURRENT_TEST")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    source = CELL.format(
        content=str(workspace / "content.png"), style=str(workspace / "style.png"), weights=str(new_weights_file)
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute(env=env)
    outputs = notebook.cells[0].outputs
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 1, outputs  # tqdm's bar, drawn as a widget
    previews = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(previews) == 1, outputs  # one image, updated in place
    printed = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    shape, checksum, iterations = re.search(r"result \((48, 64, 3)\) (\d+) \[([\d, ]+)\]", printed).groups()
    assert iterations == "0, 2, 4, 6"
    preview = np.asarray(Image.open(io.BytesIO(base64.b64decode(previews[0].data["image/png"]))).convert("RGB"))
    # The last report's image, not the first's: the preview was updated (the start is 60% noise, far from it).
    assert preview.shape == (48, 64, 3) and int(preview.astype(np.int64).sum()) == int(checksum)
    errors = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert not re.search(r"^[IWEF]\d{4} |oneDNN|(?i:cuda)|This TensorFlow binary|absl", errors, re.MULTILINE), errors
