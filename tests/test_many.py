"""Many content images: one network, one trace per size, results recorded and resumable, errors handled."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nst_tf import NSTError, StyleCost, StyleTransfer, StyleTransferConfig
from nst_tf.app.cli import main
from nst_tf.app.jobs.content_inputs import content_paths, is_image_file, output_names
from nst_tf.objective.term_registry import TERMS
from nst_tf.runs.many_images import Finished, Step, stylize_many


@pytest.fixture
def photos(tmp_path, noise_image):
    """photos/ with a.png, b.jpg, c.png (two at 48x64, one at 60x80), a text file and a subfolder's image."""
    folder = tmp_path / "photos"
    noise_image(folder / "a.png", 48, 64, 1)
    noise_image(folder / "b.jpg", 60, 80, 2)
    noise_image(folder / "c.png", 48, 64, 3)
    (folder / "notes.txt").write_text("not an image")
    (folder / "renamed.png").write_text("a text file named like an image")
    noise_image(folder / "sub" / "d.png", 48, 64, 4)
    return folder


def _args(workspace, new_weights_file, *contents, epochs=2, extra=()):
    return [
        "--content_image_filename", *map(str, contents),
        "--style_image_filename", str(workspace / "style.png"),
        "--model", str(new_weights_file),
        "--output_dir", str(workspace / "out"),
        "--max_size", "64", "--epochs", str(epochs), "--seed", "5", *extra,
    ]  # fmt: skip


def _manifest(folder):
    lines = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    return lines[0], lines[1:]


# The library -------------------------------------------------------------------------------------


def test_stylize_many_equals_separate_runs_and_traces_once_per_shape(model, images, rng):
    content, style = images
    other = rng.normal(0, 40, (1, 40, 56, 3)).astype(np.float32)
    contents = [content, content[:, :, ::-1] * 0.5, other]
    config = StyleTransferConfig(epochs=3, print_every=1, seed=7)
    items = list(stylize_many(model, iter(contents), style, config))
    finished = [item for item in items if isinstance(item, Finished)]
    assert [f.index for f in finished] == [0, 1, 2] and [f.traced for f in finished] == [True, False, True]
    assert [s.item.iteration for s in items if isinstance(s, Step) and s.index == 1] == [0, 1, 2]
    for index, done in enumerate(finished):
        seeded = StyleTransferConfig(epochs=3, seed=7 + index)
        alone = StyleTransfer(StyleCost(model, contents[index], style, config), seeded)
        alone.step(3)
        np.testing.assert_allclose(done.progress.image, alone.current_image(), rtol=0, atol=1e-3)


def test_retarget_refuses_another_shape(model, images):
    content, style = images
    cost = StyleCost(model, content, style)
    with pytest.raises(Exception, match=r"content_image has shape \(1, 40, 64, 3\); this objective is for"):
        cost.retarget(content[:, :40])


# Inputs ------------------------------------------------------------------------------------------


def test_folders_give_their_images_by_content_in_name_order(photos):
    assert [os.path.basename(p) for p in content_paths([str(photos)])] == ["a.png", "b.jpg", "c.png"]
    recursive = content_paths([str(photos)], recursive=True)
    assert [os.path.relpath(p, photos) for p in recursive] == ["a.png", "b.jpg", "c.png", os.path.join("sub", "d.png")]
    assert [os.path.basename(p) for p in content_paths([str(photos / "*.png")])] == ["a.png", "c.png"]
    assert not is_image_file(photos / "renamed.png") and not is_image_file(photos / "sub")
    # A path given twice is taken once.
    assert len(content_paths([str(photos / "a.png"), str(photos)])) == 3


def test_same_stems_get_predictable_suffixes_said_in_a_note():
    names, notes = output_names(["x/a.png", "y/a.jpg", "z/A.png", "b.png"])
    assert names == ["a.jpg", "a-2.jpg", "A-3.jpg", "b.jpg"]
    assert notes == [
        "y/a.jpg is saved as a-2.jpg: an earlier image has the name a.jpg",
        "z/A.png is saved as A-3.jpg: an earlier image has the name A.jpg",
    ]
    assert output_names(["p/a.png"], ["s/one.png", "s/two.png"])[0] == ["a__one.jpg", "a__two.jpg"]


@pytest.mark.parametrize(
    "names, message",
    [
        (["{folder}/none/*.png"], "no image matches"),
        (["{empty}"], "holds no image"),
    ],
)
def test_names_without_images_are_one_line(tmp_path, names, message):
    (tmp_path / "empty").mkdir()
    from nst_tf import NSTError

    with pytest.raises(NSTError, match=message):
        content_paths([n.format(folder=tmp_path, empty=tmp_path / "empty") for n in names])


# The command -------------------------------------------------------------------------------------


def test_a_folder_gives_one_result_each_recorded_and_a_rerun_does_only_the_rest(
    workspace, new_weights_file, photos, capsys
):
    argv = _args(workspace, new_weights_file, photos)
    assert main(argv) == 0
    out = workspace / "out"
    assert sorted(os.listdir(out)) == ["a.jpg", "b.jpg", "c.jpg", "manifest.jsonl"]
    header, records = _manifest(out)
    assert header["settings"]["config"]["epochs"] == 2
    assert sorted(r["output"] for r in records) == ["a.jpg", "b.jpg", "c.jpg"]
    assert all(r["iterations"] == 2 and r["costs"]["total"] > 0 and ":" in r["worker"] for r in records)
    out_text, err_text = capsys.readouterr()
    # In name order, though b is of another size than a and c; each "saved" line names the folder.
    saved = [line for line in out_text.splitlines() if line.startswith("saved ")]
    assert saved == [f"saved {out / name} ({i} of 3)" for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"], 1)]
    assert out_text.splitlines()[-1].startswith("done: 3 of 3 images in ") and out_text.endswith(f"saved in {out}\n")
    # notes.txt and renamed.png (text named like an image) are left out, in one note.
    note = "nst-tf: note: the content folders hold 2 files that are not images (notes.txt, renamed.png); left out"
    assert note in err_text.splitlines()
    before = (out / "a.jpg").read_bytes()

    (out / "c.jpg").unlink()
    assert main(argv) == 0
    assert "2 of 3 results are done already (manifest.jsonl); doing the other 1" in capsys.readouterr().err
    assert (out / "c.jpg").is_file() and (out / "a.jpg").read_bytes() == before
    assert len(_manifest(out)[1]) == 4

    assert main(_args(workspace, new_weights_file, photos, epochs=3)) == 2
    assert "holds the results of other settings (epochs differ)" in capsys.readouterr().err


def test_seeded_results_do_not_depend_on_which_images_ran_before(workspace, new_weights_file, photos):
    # c.png ran after a.png in the loop traced for their size; alone, it gets a fresh trace: the same image.
    assert main(_args(workspace, new_weights_file, photos)) == 0
    first = (workspace / "out" / "c.jpg").read_bytes()
    (workspace / "out" / "c.jpg").unlink()
    assert main(_args(workspace, new_weights_file, photos)) == 0
    assert (workspace / "out" / "c.jpg").read_bytes() == first


def test_each_style_gives_one_result_per_content_and_style(workspace, new_weights_file, photos):
    argv = _args(workspace, new_weights_file, photos / "a.png", extra=["--each_style"])
    argv[argv.index("--style_image_filename") + 1 : argv.index("--style_image_filename") + 2] = [
        str(workspace / "style.png"),
        str(workspace / "style2.png"),
    ]
    assert main(argv) == 0
    assert sorted(os.listdir(workspace / "out")) == ["a__style.jpg", "a__style2.jpg", "manifest.jsonl"]


def test_reports_are_printed_and_saved_per_image_only_when_asked(workspace, new_weights_file, photos, capsys):
    assert main(_args(workspace, new_weights_file, photos / "a.png", photos / "c.png", extra=["--reports"])) == 0
    out = capsys.readouterr().out
    assert "a.jpg: Iteration 0 :\n" in out and "c.jpg: Iteration 1 :\n" in out
    assert {"a.0.png", "c.0.png", "a.jpg", "c.jpg"} <= set(os.listdir(workspace / "out"))


def test_an_unreadable_member_is_refused_before_any_work_or_skipped(workspace, new_weights_file, photos, capsys):
    (photos / "broken.png").write_bytes((photos / "a.png").read_bytes()[:200])  # an image cut short
    assert main(_args(workspace, new_weights_file, photos)) == 2
    assert "broken.png: image file is truncated" in capsys.readouterr().err
    assert not (workspace / "out").exists()

    assert main(_args(workspace, new_weights_file, photos, extra=["--on_error", "skip"])) == 4
    err = capsys.readouterr().err
    assert "note: skipped" in err and "broken.png" in err
    assert sorted(os.listdir(workspace / "out")) == ["a.jpg", "b.jpg", "c.jpg", "manifest.jsonl"]


@pytest.mark.parametrize("make", ["user file", "link", "folder"])
def test_an_output_name_the_job_did_not_make_is_refused(workspace, new_weights_file, photos, capsys, make):
    out = workspace / "out"
    out.mkdir()
    target = out / "b.jpg"
    if make == "user file":
        target.write_bytes(b"mine")
    elif make == "link":
        os.symlink(workspace / "elsewhere.jpg", target)
    else:
        target.mkdir()
    assert main(_args(workspace, new_weights_file, photos)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "b.jpg" in err
    assert make != "user file" or target.read_bytes() == b"mine"
    assert sorted(os.listdir(out)) == ["b.jpg"]


def test_reports_and_on_error_are_for_several_images(workspace, new_weights_file, photos, capsys):
    assert main(_args(workspace, new_weights_file, photos / "a.png", extra=["--reports"])) == 2
    message = "--reports, --on_error, --batch_size, --engine, --workers and --ray_address apply to several"
    assert message in capsys.readouterr().err


def test_a_signal_keeps_the_finished_images_and_the_same_command_does_the_rest(
    workspace, new_weights_file, photos, noise_image
):
    for i in range(4):
        noise_image(photos / f"more{i}.png", 48, 64, 10 + i)
    argv = _args(workspace, new_weights_file, photos, epochs=60)
    process = subprocess.Popen(
        [sys.executable, "-m", "nst_tf", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in process.stdout:
            if line.startswith("saved ") and "(2 of 7)" in line:
                break
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.communicate()  # closes the pipes
    assert process.returncode == 143, err
    assert time.monotonic() - sent < 20
    last = err.strip().splitlines()[-1]
    assert last.startswith("nst-tf: terminated (SIGTERM) after ") and "the same command does the rest" in last
    # The image under way when the signal came is the one named (it named the next one to be read).
    assert "was under way" not in last or "c.png was under way, not saved" in last, last
    out = workspace / "out"
    records = _manifest(out)[1]
    assert sorted(os.listdir(out)) == sorted(["manifest.jsonl", *(r["output"] for r in records)])
    assert 2 <= len(records) < 7
    assert main(argv) == 0
    assert len(_manifest(out)[1]) == 7 and len(os.listdir(out)) == 8


# Batches -----------------------------------------------------------------------------------------


def test_a_batch_objective_gives_each_images_own_costs_and_gradient(model, images, rng):
    from nst_tf.objective.batch import BatchStyleCost

    content, style = images
    contents = np.concatenate([content, rng.normal(0, 40, content.shape).astype(np.float32)])
    config = StyleTransferConfig(tv_weight=1.0)
    generated = contents + np.float32(5.0)
    costs, gradient = BatchStyleCost(model, contents, style, config).value_and_gradient(tf.constant(generated))
    assert {name: c.shape for name, c in costs.items()} == {name: (2,) for name in ("total", "content", "style", "tv")}
    for i in range(2):
        alone, alone_gradient = StyleCost(model, contents[i : i + 1], style, config).value_and_gradient(
            tf.constant(generated[i : i + 1])
        )
        mine = {name: float(c[i]) for name, c in costs.items()}
        assert mine == pytest.approx({name: float(c) for name, c in alone.items()}, rel=1e-5)
        np.testing.assert_allclose(gradient[i], alone_gradient[0], rtol=0, atol=1e-5 * np.abs(alone_gradient).max())


@pytest.mark.parametrize("batch_size", [2, 3])
def test_a_batch_gives_the_images_of_separate_runs(model, images, rng, batch_size):
    from nst_tf.tensors.images import deprocess_image

    content, style = images
    contents = [content, content * 0.5, rng.normal(0, 40, content.shape).astype(np.float32)]
    config = StyleTransferConfig(epochs=4, print_every=4, seed=11)

    def finals(size):
        done = stylize_many(model, iter(contents), style, config, batch_size=size)
        return [item.progress.image for item in done if isinstance(item, Finished)]

    for batched, alone in zip(finals(batch_size), finals(1)):
        # Within 2 of 255 after 4 steps: the batched convolutions may sum in another order.
        difference = np.abs(deprocess_image(batched).astype(int) - deprocess_image(alone).astype(int))
        assert difference.max() <= 2


def test_batches_from_the_command_give_the_same_files(workspace, new_weights_file, photos):
    assert main(_args(workspace, new_weights_file, photos, extra=["--batch_size", "2"])) == 0
    os.rename(workspace / "out", workspace / "batched")
    assert main(_args(workspace, new_weights_file, photos)) == 0
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        with Image.open(workspace / "batched" / name) as one, Image.open(workspace / "out" / name) as other:
            assert np.abs(np.asarray(one, int) - np.asarray(other, int)).max() <= 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch_size", "2", "--optimizer", "lbfgs"], "batches need --optimizer adam"),
        (["--batch_size", "2", "--tile_size", "32"], "is computed in tiles; batches run whole"),
        (["--batch_size", "24", "--max_memory", "1000M"], "--batch_size 24: 24 images of 64x48 at once need about"),
        (["--batch_size", "0"], "--batch_size must be a positive whole number; got 0"),
    ],
)
def test_batches_that_cannot_run_are_refused_before_any_work(
    workspace, new_weights_file, photos, capsys, extra, message, noise_image
):
    for i in range(22):  # 24 images of one size: each fits the budget, 24 at once do not
        noise_image(photos / f"more{i:02d}.png", 48, 64, 100 + i)
    assert main(_args(workspace, new_weights_file, photos, extra=extra)) == 2
    assert message in capsys.readouterr().err
    assert not (workspace / "out").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch_size", "2", "--preserve_colors", "histogram"], "--batch_size: preserve_colors histogram recolours"),
        (["--scales", "2"], "--scales: several content images run at one size each; give --scales 1"),
        ([], "out exists and is not a folder"),
    ],
)
def test_what_several_images_cannot_do_is_refused_in_one_line(
    workspace, new_weights_file, photos, capsys, extra, message
):
    if not extra:
        (workspace / "out").write_text("a file where the output folder would be")
    assert main(_args(workspace, new_weights_file, photos, extra=extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert extra or (workspace / "out").read_text() == "a file where the output folder would be"
    assert not extra or not (workspace / "out").exists()


# From the attack on the many-image job -----------------------------------------------------------


def test_an_each_style_job_is_resumed(workspace, new_weights_file, photos, capsys):
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png", extra=["--each_style"])
    styles = argv.index("--style_image_filename") + 1
    argv[styles : styles + 1] = [str(workspace / "style.png"), str(workspace / "style2.png")]
    assert main(argv) == 0
    (workspace / "out" / "c__style2.jpg").unlink()
    capsys.readouterr()
    assert main(argv) == 0  # each input has two recorded results; was refused as "not a result ... records"
    assert "3 of 4 results are done already" in capsys.readouterr().err
    assert (workspace / "out" / "c__style2.jpg").is_file()


def test_a_job_writing_into_its_input_folder_does_not_take_its_results_as_inputs(
    workspace, new_weights_file, tmp_path, capsys, noise_image
):
    folder = tmp_path / "pngs"
    for name, seed in (("x.png", 1), ("y.png", 2)):
        noise_image(folder / name, 48, 64, seed)
    argv = _args(workspace, new_weights_file, folder)
    argv[argv.index("--output_dir") + 1] = str(folder)
    assert main(argv) == 0
    assert sorted(os.listdir(folder)) == ["manifest.jsonl", "x.jpg", "x.png", "y.jpg", "y.png"]
    capsys.readouterr()
    assert main(argv) == 0  # x.jpg and y.jpg were taken as inputs and refused as "the job's input"
    assert "2 of 2 results are done already" in capsys.readouterr().err


def test_a_manifest_that_is_a_pipe_or_a_link_is_refused_before_any_work(workspace, new_weights_file, photos, capsys):
    out = workspace / "out"
    out.mkdir()
    os.mkfifo(out / "manifest.jsonl")
    assert main(_args(workspace, new_weights_file, photos)) == 2  # it blocked reading the pipe
    assert "manifest.jsonl: is not a regular file nst_tf wrote" in capsys.readouterr().err
    os.remove(out / "manifest.jsonl")
    os.symlink(workspace / "elsewhere.jsonl", out / "manifest.jsonl")
    assert main(_args(workspace, new_weights_file, photos)) == 2
    assert sorted(os.listdir(out)) == ["manifest.jsonl"]


def test_a_content_image_changed_since_its_result_is_made_again(
    workspace, new_weights_file, photos, capsys, noise_image
):
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png")
    assert main(argv) == 0
    out = workspace / "out"
    before = {name: (out / name).read_bytes() for name in ("a.jpg", "c.jpg")}
    assert all(len(r["input_sha256"]) == 64 for r in _manifest(out)[1])
    noise_image(photos / "c.png", 48, 64, 9)  # the same name and size, other pixels
    capsys.readouterr()
    assert main(argv) == 0
    assert "1 of 2 results are done already" in capsys.readouterr().err
    assert (out / "a.jpg").read_bytes() == before["a.jpg"] and (out / "c.jpg").read_bytes() != before["c.jpg"]


def test_a_manifest_line_of_other_settings_is_not_taken_as_done(workspace, new_weights_file, photos, capsys):
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png")
    assert main(argv) == 0
    path = workspace / "out" / "manifest.jsonl"
    lines = path.read_text().splitlines()
    edited = json.loads(lines[2])
    edited["fingerprint"] = "0" * 64  # a line copied from another job's manifest
    path.write_text("\n".join([*lines[:2], json.dumps(edited)]) + "\n")
    kept = (workspace / "out" / edited["output"]).read_bytes()
    capsys.readouterr()
    assert main(argv) == 2  # its file is not the job's: never replaced
    assert f"{edited['output']} exists and is not a result manifest.jsonl records" in capsys.readouterr().err
    assert (workspace / "out" / edited["output"]).read_bytes() == kept


def test_a_signal_during_a_save_is_not_lost(workspace, new_weights_file, photos, capsys, monkeypatch):
    from nst_tf.app.jobs.outputs import Saver

    save = Saver.save

    def save_and_signal(self, name, image):
        os.kill(os.getpid(), signal.SIGINT)  # arrives while the result and its line are written
        return save(self, name, image)

    monkeypatch.setattr(Saver, "save", save_and_signal)
    assert main(_args(workspace, new_weights_file, photos, extra=["--batch_size", "2"])) == 130
    assert "interrupted after 1 of 3 images" in capsys.readouterr().err
    assert len(_manifest(workspace / "out")[1]) == 1  # the result being saved is saved and recorded


def test_a_second_command_into_a_folder_in_use_is_refused(workspace, new_weights_file, photos, capsys):
    from nst_tf.ground.lock import holding

    (workspace / "out").mkdir()
    with holding(str(workspace / "out")):
        assert main(_args(workspace, new_weights_file, photos)) == 2
    assert "another nst_tf command is writing into it" in capsys.readouterr().err
    assert os.listdir(workspace / "out") == []
    assert main(_args(workspace, new_weights_file, photos)) == 0  # released


@pytest.mark.parametrize(
    "line",
    [
        {"input": ["a list"], "output": "a.jpg"},
        {"input": {"a": 1}, "output": "a.jpg"},
        {"input": "x", "output": ["a.jpg"]},
    ],
)
def test_manifest_lines_of_other_types_are_not_taken_as_done(workspace, new_weights_file, photos, capsys, line):
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png")
    assert main(argv) == 0
    path = workspace / "out" / "manifest.jsonl"
    header = json.loads(path.read_text().splitlines()[0])
    path.write_text(json.dumps(header) + "\n" + json.dumps({**line, "fingerprint": header["fingerprint"]}) + "\n")
    assert main(argv) == 2  # a.jpg is no longer recorded: never replaced (was a TypeError)
    assert "a.jpg exists and is not a result manifest.jsonl records" in capsys.readouterr().err


def test_a_manifest_line_too_long_or_too_deep_to_be_nst_tfs_is_passed_over(tmp_path, monkeypatch):
    from nst_tf.app.jobs import manifest as manifests

    monkeypatch.setattr(manifests, "LINE_LIMIT", 300)  # 1 MiB in use: a hand-made line of gigabytes stays on disk
    written = manifests.Manifest(str(tmp_path), {"epochs": 3})
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"x")
        written.add(input=f"{name}.png", output=name, input_sha256="d")
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    long = json.dumps({"input": "z" * 1000, "output": "a.jpg", "fingerprint": written.fingerprint})
    (tmp_path / "manifest.jsonl").write_text("\n".join([lines[0], lines[1], long, lines[2]]) + "\n")
    read = manifests.Manifest(str(tmp_path), {"epochs": 3})
    read.load()
    assert read.finished == {"a.jpg": ("a.jpg.png", "d"), "b.jpg": ("b.jpg.png", "d")}
    nested = "[" * 100_000 + "]" * 100_000  # under the line limit, and deeper than json's recursion
    monkeypatch.setattr(manifests, "LINE_LIMIT", 300_000)
    (tmp_path / "manifest.jsonl").write_text("\n".join([lines[0], nested, lines[1]]) + "\n")
    read = manifests.Manifest(str(tmp_path), {"epochs": 3})
    read.load()
    assert read.finished == {"a.jpg": ("a.jpg.png", "d")}
    monkeypatch.setattr(manifests, "LINE_LIMIT", 300)
    (tmp_path / "manifest.jsonl").write_text(long + "\n" + "\n".join(lines) + "\n")  # the header's place
    with pytest.raises(NSTError, match="not a manifest nst_tf wrote"):
        manifests.Manifest(str(tmp_path), {"epochs": 3}).load()


def test_a_hand_edited_header_of_other_settings_is_one_line(workspace, new_weights_file, photos, capsys):
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png")
    assert main(argv) == 0
    path = workspace / "out" / "manifest.jsonl"
    header = json.loads(path.read_text().splitlines()[0])
    path.write_text(json.dumps({**header, "fingerprint": "0" * 64, "settings": ["not", "a", "dict"]}) + "\n")
    assert main(argv) == 2  # was an AttributeError
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("nst-tf: error: ") and "holds the results of other settings (" in last


def test_a_content_image_changed_after_setup_is_refused_at_its_turn(photos):
    from nst_tf.app.jobs.many_setup import _read, file_digest

    path = str(photos / "a.png")
    assert _read(path, (48, 64), "crop", digest=file_digest(path)).shape == (48, 64, 3)
    with pytest.raises(NSTError, match="its bytes changed since the job started"):
        _read(path, (48, 64), "crop", digest="0" * 64)
    os.remove(path)
    os.mkfifo(path)  # a pipe in its place, which nobody writes: reading it blocked the job forever
    with pytest.raises(NSTError, match="a.png: is not a regular file"):
        _read(path, (48, 64), "crop", digest=file_digest(str(photos / "c.png")))


def test_reports_never_overwrite_an_input_and_say_what_they_replace(workspace, new_weights_file, photos, capsys):
    folder = workspace / "shared"
    folder.mkdir()
    (folder / "a.png").write_bytes((photos / "a.png").read_bytes())
    (folder / "a.0.png").write_bytes((photos / "c.png").read_bytes())  # an input named like a's first report
    argv = _args(workspace, new_weights_file, folder, extra=["--reports", "--output_dir", str(folder)])
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.count("\n") == 0 and f"a.0.png is the job's input {folder / 'a.0.png'}; --reports would overwrite it" in err
    )
    assert (folder / "a.0.png").read_bytes() == (photos / "c.png").read_bytes()
    assert sorted(os.listdir(folder)) == ["a.0.png", "a.png"]

    (folder / "a.0.png").unlink()
    (folder / "a.1.png").write_text("a file named like a report")
    assert main(argv) == 0
    assert "already holds 1 images named as this job's reports; --reports replaces them" in capsys.readouterr().err
    with Image.open(folder / "a.1.png") as report:
        assert report.size == (64, 48)


def test_reports_never_overwrite_the_weights_file(workspace, new_weights_file, photos, capsys):
    out = workspace / "out"
    out.mkdir()
    weights = out / "a.0.png"
    with open(new_weights_file, "rb") as handle:
        original = handle.read()
    weights.write_bytes(original)
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png", extra=["--reports"])
    argv[argv.index("--model") + 1] = str(weights)
    assert main(argv) == 2
    assert f"a.0.png is the job's input {weights}; --reports would overwrite it" in capsys.readouterr().err
    assert weights.read_bytes() == original


def test_a_result_made_again_from_another_image_counts_for_that_image_only(
    workspace, new_weights_file, photos, capsys, noise_image
):
    folder = workspace / "named"
    noise_image(folder / "x.png", 48, 64, 1)
    argv = _args(workspace, new_weights_file, folder)
    assert main(argv) == 0
    noise_image(folder / "x.jpeg", 48, 64, 2)  # now x.jpeg's result is x.jpg, and x.png's x-2.jpg
    assert main(argv) == 0
    out = workspace / "out"
    of_jpeg = (out / "x.jpg").read_bytes()
    (folder / "x.jpeg").unlink()  # x.png's result is x.jpg again, but x.jpg holds x.jpeg's
    capsys.readouterr()
    assert main(argv) == 0
    assert "done already" not in capsys.readouterr().err
    assert (out / "x.jpg").read_bytes() != of_jpeg
    _, records = _manifest(out)
    assert records[-1]["output"] == "x.jpg" and records[-1]["input"].endswith("x.png")


def test_a_result_whose_record_cannot_be_written_is_kept_elsewhere_and_the_rerun_finishes(
    workspace, new_weights_file, photos, capsys, monkeypatch, tmp_path
):
    from nst_tf.app.jobs import manifest

    rescue = tmp_path / "rescue"
    rescue.mkdir()
    monkeypatch.setattr("nst_tf.app.jobs.outputs.rescue_folder", lambda: str(rescue))
    append = manifest.Manifest._append
    calls = []

    def full_at_the_second_record(self, line):
        calls.append(line)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        append(self, line)

    monkeypatch.setattr(manifest.Manifest, "_append", full_at_the_second_record)
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png")
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "manifest.jsonl: No space left on device; c.jpg is removed from the folder, as it could not be" in err
    out = workspace / "out"
    assert sorted(os.listdir(out)) == ["a.jpg", "manifest.jsonl"]
    assert [name.endswith(".jpg") for name in os.listdir(rescue)] == [True]

    monkeypatch.setattr(manifest.Manifest, "_append", append)
    assert main(argv) == 0
    assert "1 of 2 results are done already" in capsys.readouterr().err
    assert [r["output"] for r in _manifest(out)[1]] == ["a.jpg", "c.jpg"]


def test_a_manifest_line_cut_short_is_not_glued_to_the_next(workspace, new_weights_file, photos, capsys):
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png")
    assert main(argv) == 0
    out = workspace / "out"
    lines = (out / "manifest.jsonl").read_text().splitlines(keepends=True)
    (out / "c.jpg").unlink()
    (out / "manifest.jsonl").write_text("".join(lines[:2]) + lines[2][:40])  # c's line cut by a full disk
    assert main(argv) == 0
    header, records = [], []
    for line in (out / "manifest.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            header.append(line)
    assert header == [lines[2][:40]]
    assert [r.get("output") for r in records[1:]] == ["a.jpg", "c.jpg"]


def test_a_recursive_glob_never_enters_links_to_folders(photos):
    os.symlink("..", photos / "sub" / "up")  # a loop: glob.glob followed it without end
    os.symlink(".", photos / "sub" / "self")
    code = (
        "import sys; from nst_tf.app.jobs.content_inputs import content_paths; "
        "print(*content_paths([sys.argv[1]], recursive=True), sep='\\n')"
    )
    pattern = str(photos / "**" / "*.png")
    found = subprocess.run([sys.executable, "-c", code, pattern], capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(photos / name) for name in ("a.png", "c.png", "sub/d.png")]
    with pytest.raises(NSTError, match="no image matches"):  # folders only, as glob.glob gives them
        content_paths([str(photos / "**") + os.sep], recursive=True)


def test_a_manifest_removed_during_the_job_is_made_again_with_what_it_recorded(
    workspace, new_weights_file, photos, capsys, monkeypatch
):
    from nst_tf.app.jobs import manifest

    add = manifest.Manifest.add

    def removed_before_the_second(self, **record):
        if record["output"] == "c.jpg":
            os.remove(self.path)
        add(self, **record)

    monkeypatch.setattr(manifest.Manifest, "add", removed_before_the_second)
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png")
    assert main(argv) == 0
    monkeypatch.setattr(manifest.Manifest, "add", add)
    _, records = _manifest(workspace / "out")
    assert [(r["output"], r.get("restored", False)) for r in records] == [("a.jpg", True), ("c.jpg", False)]
    capsys.readouterr()
    assert main(argv) == 0
    assert "2 of 2 results are done already" in capsys.readouterr().err


class _BrightnessTerm:
    """A toy image term, as a user's own file would write one: the squared mean of the image, weighted."""

    name = "brightness"
    layers = ()
    weight = 1e-3

    def image_cost(self, image):
        return tf.square(tf.reduce_mean(image))


def test_a_registered_term_is_summed_printed_and_recorded_with_no_other_edit(
    workspace, new_weights_file, photos, capsys, monkeypatch
):
    monkeypatch.setitem(TERMS, "brightness", lambda config, size: _BrightnessTerm())
    argv = _args(workspace, new_weights_file, photos / "a.png", photos / "c.png", extra=["--reports"])
    assert main([*argv, "--print_every", "1"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if "brightness cost = " in line]
    assert len(printed) == 4  # two reports of each image, each with the term's own line
    assert all(float(line.rsplit("= ", 1)[1]) > 0 for line in printed)
    _, records = _manifest(workspace / "out")
    assert [sorted(r["costs"]) for r in records] == [["brightness", "content", "style", "total"]] * 2
    for record in records:
        costs = record["costs"]
        weighted = 10 * costs["content"] + 40 * costs["style"] + 1e-3 * costs["brightness"]
        assert costs["total"] == pytest.approx(weighted, rel=1e-4)
