"""Video: a clip in, an .mp4 of the same frames, rate and audio out; resumable, safe, and temporally steadier."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import PIL.Image
import pytest

from nst_tf import ImageSize, NSTError, StyleTransferConfig
from nst_tf.app.cli import main
from nst_tf.app.jobs.video_setup import frame_size
from nst_tf.runs.many_images import Finished
from nst_tf.plan.clip import FfmpegError, encode, frame_name, frames, is_frame_name, probe
from nst_tf.plan.video_options import VideoOptions
from nst_tf.runs.video_frames import stylize_video

cv2 = pytest.importorskip("cv2")  # the test extra installs both: never skipped under the README's command
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")


def _ffmpeg(*args):
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *map(str, args)], check=True)


def texture(height, width, seed=0):
    """Smooth random texture, uint8 RGB: what optical flow can follow."""
    noise = np.random.default_rng(seed).normal(0, 1, (height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)


def moving(count, height, width, step):
    """``count`` frames of a texture moving ``step`` pixels left per frame."""
    big = texture(height, width + step * count)
    return [big[:, step * i : step * i + width] for i in range(count)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """clip.mp4 (6 frames, 64x48, 6 per second, a sine as audio), silent.mp4 (5 frames, no audio)."""
    folder = tmp_path_factory.mktemp("clips")
    encode(str(folder / "silent.mp4"), moving(5, 48, 64, 2), (64, 48), 5.0)
    _ffmpeg("-i", folder / "silent.mp4", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1",
            "-c:v", "copy", "-c:a", "aac", "-shortest", folder / "voiced.mp4")  # fmt: skip
    encode(str(folder / "clip.mp4"), moving(6, 48, 64, 2), (64, 48), 6.0)
    _ffmpeg("-i", folder / "clip.mp4", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000:duration=1",
            "-c:v", "copy", "-c:a", "aac", folder / "clip-audio.mp4")  # fmt: skip
    os.replace(folder / "clip-audio.mp4", folder / "clip.mp4")
    return folder


def _args(workspace, weights, clip, *extra, epochs=2):
    return [
        "--content_image_filename", str(clip),
        "--style_image_filename", str(workspace / "style.png"),
        "--model", str(weights),
        "--output_dir", str(workspace / "out"),
        "--max_size", "64", "--epochs", str(epochs), "--print_every", str(epochs), "--seed", "3", *extra,
    ]  # fmt: skip


# The command -------------------------------------------------------------------------------------


def test_a_video_gives_an_mp4_of_its_frame_count_rate_and_audio(workspace, new_weights_file, clips, capsys):
    assert main(_args(workspace, new_weights_file, clips / "clip.mp4")) == 0
    out = workspace / "out"
    assert sorted(os.listdir(out)) == ["clip.frames", "clip.mp4"]
    made, given = probe(str(out / "clip.mp4")), probe(str(clips / "clip.mp4"))
    assert (made.frames, made.fps, made.size, made.audio) == (6, 6.0, (64, 48), True) and given.audio
    assert sorted(os.listdir(out / "clip.frames")) == [f"{i:06d}.png" for i in range(1, 7)] + ["manifest.jsonl"]
    printed = capsys.readouterr().out
    assert f"saved {out / 'clip.frames' / '000006.png'} (6 of 6)\n" in printed and "with its audio" in printed
    last = printed.splitlines()[-1]
    assert re.fullmatch(
        r"done: 6 frames in [0-9.]+ s; saved \S+clip\.mp4 \(6 frames at 6 per second, with its audio\)", last
    )
    # The video's frames are the saved frames, up to H.264's loss.
    first = np.asarray(PIL.Image.open(out / "clip.frames" / "000001.png"), np.float32)
    decoded = next(frames(made)).astype(np.float32)
    assert np.mean(np.abs(decoded - first)) < 12
    assert main(_args(workspace, new_weights_file, clips / "clip.mp4")) == 0
    assert "out/clip.mp4 is done already (6 frames)" in capsys.readouterr().err


def test_a_silent_video_gives_a_silent_mp4(workspace, new_weights_file, clips, capsys):
    assert main(_args(workspace, new_weights_file, clips / "silent.mp4", "--temporal_weight", "0")) == 0
    made = probe(str(workspace / "out" / "silent.mp4"))
    assert (made.frames, made.audio) == (5, False)
    assert "with its audio" not in capsys.readouterr().out


def test_a_deleted_video_is_encoded_again_and_missing_frames_are_made(workspace, new_weights_file, clips, capsys):
    argv = _args(workspace, new_weights_file, clips / "clip.mp4")
    assert main(argv) == 0
    out = workspace / "out"
    kept = (out / "clip.frames" / "000002.png").read_bytes()
    (out / "clip.mp4").unlink()
    for name in ("000004.png", "000005.png", "000006.png"):
        (out / "clip.frames" / name).unlink()
    capsys.readouterr()
    assert main(argv) == 0
    assert "3 of 6 frames are done already; going on from frame 4" in capsys.readouterr().err
    assert probe(str(out / "clip.mp4")).frames == 6
    assert (out / "clip.frames" / "000002.png").read_bytes() == kept


def test_a_users_mp4_is_never_replaced_and_nothing_is_created(workspace, new_weights_file, clips, capsys):
    out = workspace / "out"
    out.mkdir()
    (out / "clip.mp4").write_bytes(b"the user's own video")
    assert main(_args(workspace, new_weights_file, clips / "clip.mp4")) == 2
    assert "out/clip.mp4 exists; nst_tf never replaces it" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["clip.mp4"] and (out / "clip.mp4").read_bytes() == b"the user's own video"


def test_other_settings_into_the_same_frames_folder_are_refused(workspace, new_weights_file, clips, capsys):
    assert main(_args(workspace, new_weights_file, clips / "clip.mp4")) == 0
    (workspace / "out" / "clip.mp4").unlink()
    assert main(_args(workspace, new_weights_file, clips / "clip.mp4", "--temporal_weight", "5")) == 2
    assert "clip.frames holds the results of other settings (temporal_weight differ)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "make",
    [
        lambda clips: b"\x00\x00\x00\x18ftypmp42" + bytes(100),  # an MP4's first box and nothing after it
        lambda clips: (clips / "clip.mp4").read_bytes()[:300],  # a video cut short
    ],
    ids=["a header and nothing", "cut short"],
)
def test_a_file_that_is_not_a_video_is_one_line_and_creates_nothing(workspace, new_weights_file, clips, capsys, make):
    bad = workspace / "bad.mp4"
    bad.write_bytes(make(clips))
    assert main(_args(workspace, new_weights_file, bad)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.mp4: not a video ffmpeg can read" in err
    assert not (workspace / "out").exists()


@pytest.mark.parametrize(
    "name, output, message",
    [
        (
            "audio.mp4",
            ["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"],
            "not a video ffmpeg can read: it has no video stream",
        ),
        ("empty.mkv", ["-f", "lavfi", "-i", "testsrc=size=64x48", "-frames:v", "0"], "the video has no frames"),
    ],
)
def test_a_video_without_frames_is_refused(workspace, new_weights_file, tmp_path, capsys, name, output, message):
    _ffmpeg(*output, tmp_path / name)
    assert main(_args(workspace, new_weights_file, tmp_path / name)) == 2
    assert f"{name}: {message}" in capsys.readouterr().err
    assert not (workspace / "out").exists()


def test_frames_larger_than_the_decoding_limit_are_refused_before_decoding(
    workspace, new_weights_file, clips, capsys, monkeypatch
):
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)  # the frames have 3072 pixels: over twice this
    assert main(_args(workspace, new_weights_file, clips / "clip.mp4")) == 2
    assert "its frames are 64x48 pixels, more than" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--scales", "2"], "--scales: a video's frames run at one size each"),
        (["--preserve_colors", "luminance"], "--preserve_colors luminance"),
        (["--temporal_weight", "-1"], "temporal_weight must be a finite number of at least 0"),
        (["--first_frame_epochs", "0"], "first_frame_epochs must be a positive whole number"),
        (["--flow", "lucas"], "invalid choice: 'lucas'"),
    ],
)
def test_video_options_that_cannot_work_are_refused_in_one_line(
    workspace, new_weights_file, clips, capsys, extra, message
):
    assert main(_args(workspace, new_weights_file, clips / "clip.mp4", *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (workspace / "out").exists()


def test_video_options_are_refused_for_an_image(cli_args, capsys):
    assert main(cli_args("--long_term")) == 2
    assert "--long_term applies to a video as the content; " in capsys.readouterr().err


@pytest.mark.parametrize(
    "size, sized, shape, expected",
    [
        (ImageSize(), set(), (1080, 1920), (224, 400)),  # the video's aspect ratio, the longer side 400
        (ImageSize(max_size=256), {"max_size"}, (1080, 1920), (144, 256)),
        (ImageSize(width=300), {"width"}, (480, 640), (224, 300)),  # 225 rounded down to even
        (ImageSize(height=101), {"height"}, (100, 200), (100, 202)),
        (ImageSize(width=128, height=128), {"width", "height"}, (1080, 1920), (128, 128)),  # asked: cropped
    ],
)
def test_frames_keep_the_videos_aspect_ratio_with_even_sides_unless_both_sides_are_given(size, sized, shape, expected):
    assert frame_size(size, set(sized), shape) == expected


# Signals and resumption --------------------------------------------------------------------------


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143)])  # SIGINT's path is the same (test_cli_signals)
def test_a_signal_ends_a_video_job_promptly_and_the_same_command_goes_on(
    workspace, new_weights_file, clips, signum, status
):
    argv = _args(workspace, new_weights_file, clips / "clip.mp4", epochs=40)
    process = subprocess.Popen(
        [sys.executable, "-m", "nst_tf", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for line in process.stdout:
            if line.startswith("saved ") and "clip.frames/000002.png" in line:
                break
        else:
            pytest.fail("the job ended before it saved two frames: " + process.stderr.read())
        process.send_signal(signum)
        sent = time.monotonic()
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.communicate()  # closes the pipes
    assert process.returncode == status, err
    assert time.monotonic() - sent < 3.5
    last = err.strip().splitlines()[-1]
    assert " of 6 frames; the finished ones are saved in " in last and "the same command goes on" in last
    out = workspace / "out"
    assert not (out / "clip.mp4").exists() and not [n for n in os.listdir(out) if "partial" in n]
    names = sorted(os.listdir(out / "clip.frames"))
    assert names[:2] == ["000001.png", "000002.png"] and not [n for n in names if n.startswith(".")]
    done = int(last.split(" after ")[1].split(" of ")[0])
    assert done >= 2 and len(names) == done + 1  # the frames and the manifest
    finished = subprocess.run([sys.executable, "-m", "nst_tf", *argv], capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr
    assert f"{done} of 6 frames are done already; going on from frame {done + 1}" in finished.stderr
    assert probe(str(out / "clip.mp4")).frames == 6
    records = [json.loads(line) for line in (out / "clip.frames" / "manifest.jsonl").read_text().splitlines()[1:]]
    assert [r["output"] for r in records] == [f"{i:06d}.png" for i in range(1, 7)] + ["../clip.mp4"]


def test_ctrl_c_in_a_terminal_stops_a_video_job_as_a_signal_to_it_alone_does(workspace, new_weights_file, tmp_path):
    # A terminal's Ctrl-C goes to the whole foreground process group. ffmpeg decoding the frames (still
    # running: 40 frames overfill the pipe) must not end first and make the video look damaged.
    clip = tmp_path / "long.mp4"
    encode(str(clip), moving(40, 48, 64, 1), (64, 48), 10.0)
    argv = _args(workspace, new_weights_file, clip, epochs=10)
    command = [sys.executable, "-m", "nst_tf", *argv]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        try:
            for line in process.stdout:
                if line.startswith("saved ") and "long.frames/000002.png" in line:
                    break
            os.killpg(process.pid, signal.SIGINT)
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
    assert process.returncode == 130, err
    assert " of 40 frames; the finished ones are saved in " in err.strip().splitlines()[-1], err


def test_a_video_job_in_the_background_of_a_terminal_runs_to_the_end(workspace, new_weights_file, clips, tmp_path):
    # ffmpeg reading or setting up the terminal from a background process group is stopped by SIGTTIN or
    # SIGTTOU: imageio-ffmpeg's frame count did so, and the command hung.
    pty = pytest.importorskip("pty")
    argv = _args(workspace, new_weights_file, clips / "silent.mp4", epochs=1)
    leader = (
        "import os, subprocess, sys\n"
        "os.setsid()\n"
        "os.close(os.open(os.ttyname(0), os.O_RDWR))  # the terminal becomes this session's\n"
        # The command in a process group of its own: a background job of that terminal.
        f"child = subprocess.Popen({[sys.executable, '-m', 'nst_tf', *argv]!r}, stdin=0, preexec_fn=os.setpgrp)\n"
        "try:\n"
        "    sys.exit(child.wait(timeout=120))\n"
        "except subprocess.TimeoutExpired:\n"
        "    child.kill()\n"
        "    sys.exit('stopped in the background')\n"
    )
    master, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", leader], stdin=terminal, capture_output=True, text=True, timeout=180
        )
    finally:
        os.close(master)
        os.close(terminal)
    assert done.returncode == 0, done.stderr
    assert probe(str(workspace / "out" / "silent.mp4")).frames == 5


# The library and the temporal term ---------------------------------------------------------------


def test_stylize_video_traces_once_and_runs_the_first_frame_longer(model, rng):
    style = rng.normal(0, 40, (1, 48, 64, 3)).astype(np.float32)
    config = StyleTransferConfig(epochs=3, print_every=1, seed=0)
    items = list(stylize_video(model, moving(3, 48, 64, 2), style, config, VideoOptions(first_frame_epochs=5)))
    finished = [item for item in items if isinstance(item, Finished)]
    assert [f.traced for f in finished] == [True, False, False]
    assert [f.progress.iteration + 1 for f in finished] == [5, 3, 3]


def test_histogram_colour_preservation_runs_for_a_video(model, rng):
    # The refusal of "luminance" for video names "histogram" as what works: each frame's style targets
    # are recoloured to that frame (the objective's retarget), the frames tinted differently here.
    style = rng.normal(0, 40, (1, 48, 64, 3)).astype(np.float32)
    frames_ = [frame // 2 + np.uint8(i * 60) for i, frame in enumerate(moving(2, 48, 64, 2))]
    config = StyleTransferConfig(epochs=2, print_every=1, seed=0, preserve_colors="histogram")
    items = list(stylize_video(model, frames_, style, config, VideoOptions()))
    finished = [item for item in items if isinstance(item, Finished)]
    assert len(finished) == 2 and all(np.isfinite(f.progress.image).all() for f in finished)
    luminance = StyleTransferConfig(epochs=2, preserve_colors="luminance")
    with pytest.raises(NSTError, match="--preserve_colors luminance is not for video"):
        list(stylize_video(model, frames_, style, luminance, VideoOptions()))


def _warp_error(images, step):
    """Mean squared difference between each output frame and the one before moved ``step`` pixels left."""
    return float(np.mean([np.mean((b[:, :-step] - a[:, step:]) ** 2) for a, b in zip(images, images[1:])]))


def test_the_temporal_term_makes_consecutive_frames_agree_along_the_motion(model, rng):
    clip = moving(5, 48, 64, 2)
    style = rng.normal(0, 40, (1, 48, 64, 3)).astype(np.float32)
    config = StyleTransferConfig(epochs=10, print_every=10, seed=0)
    errors = {}
    for weight in (0.0, 1e4):
        run = stylize_video(model, clip, style, config, VideoOptions(temporal_weight=weight))
        images = [item.progress.image[0] for item in run if isinstance(item, Finished)]
        errors[weight] = _warp_error(images, 2)
    # Measured here (tiny synthetic network, 10 iterations a frame): about 27 without, 13 with.
    assert errors[1e4] < 0.75 * errors[0.0], errors


def test_long_term_consistency_compares_with_frames_one_two_and_four_back(model, rng, monkeypatch):
    from nst_tf.runs import video_frames as stylize_module

    compared = []
    held = stylize_module.VideoStylizer._held

    def spy(self, pixels, earlier):
        compared.append(sorted(earlier))
        return held(self, pixels, earlier)

    monkeypatch.setattr(stylize_module.VideoStylizer, "_held", spy)
    style = rng.normal(0, 40, (1, 48, 64, 3)).astype(np.float32)
    config = StyleTransferConfig(epochs=1, print_every=1, seed=0)
    items = list(stylize_video(model, moving(6, 48, 64, 2), style, config, VideoOptions(long_term=True)))
    assert [f.index for f in items if isinstance(f, Finished)] == list(range(6))
    assert compared == [[], [1], [1, 2], [1, 2], [1, 2, 4], [1, 2, 4]]


def test_the_video_gets_the_umasks_permissions_like_the_frames(workspace, new_weights_file, clips):
    assert main(_args(workspace, new_weights_file, clips / "silent.mp4")) == 0
    mode = os.stat(workspace / "out" / "silent.mp4").st_mode & 0o777
    assert mode == os.stat(workspace / "out" / "silent.frames" / "000001.png").st_mode & 0o777  # was 0600


def test_a_damaged_frame_is_made_again_on_the_next_run(workspace, new_weights_file, clips, capsys):
    argv = _args(workspace, new_weights_file, clips / "silent.mp4")
    assert main(argv) == 0
    out = workspace / "out"
    (out / "silent.mp4").unlink()
    (out / "silent.frames" / "000004.png").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(argv) == 0  # was refused at every rerun, blaming the temporary video file
    assert "3 of 5 frames are done already; going on from frame 4" in capsys.readouterr().err
    assert probe(str(out / "silent.mp4")).frames == 5


def test_a_frame_resized_since_is_made_again(workspace, new_weights_file, clips, capsys):
    argv = _args(workspace, new_weights_file, clips / "silent.mp4")
    assert main(argv) == 0
    out = workspace / "out"
    (out / "silent.mp4").unlink()
    PIL.Image.new("RGB", (100, 100)).save(out / "silent.frames" / "000004.png")
    capsys.readouterr()
    assert main(argv) == 0  # was refused at every rerun
    assert "3 of 5 frames are done already; going on from frame 4" in capsys.readouterr().err
    assert probe(str(out / "silent.mp4")).frames == 5
    with PIL.Image.open(out / "silent.frames" / "000004.png") as remade:
        assert remade.size == (64, 48)


def test_what_a_killed_run_leaves_is_removed_and_a_users_frame_file_never_replaced(
    workspace, new_weights_file, clips, capsys
):
    # A frame is saved under a name of its own, recorded, then renamed: a kill leaves a hidden leftover or
    # a recorded frame missing, never an unrecorded frame file, so one is always the user's.
    argv = _args(workspace, new_weights_file, clips / "silent.mp4")
    assert main(argv) == 0
    out, frames_folder = workspace / "out", workspace / "out" / "silent.frames"
    (out / "silent.mp4").unlink()
    lines = (frames_folder / "manifest.jsonl").read_text().splitlines()
    (frames_folder / "manifest.jsonl").write_text("\n".join(lines[:4]) + "\n")  # frames 1-3 recorded
    os.replace(frames_folder / "000004.png", frames_folder / ".000004.pending.png")  # killed before its line
    (frames_folder / "000005.png").unlink()
    (out / ".silent.mp4.0123456789abcdef.partial.mp4").write_bytes(b"a killed encode's")
    (frames_folder / ".nst_tf-0123456789abcdef.png").write_bytes(b"a save killed before its rename")
    users = [".silent.mp4.notours.partial.mp4", ".silent.mp4.backup-1.partial.mp4"]
    users.append(".silent.mp4.0123456789ABCDEF.partial.mp4")
    for name in users:  # names the job never makes
        (out / name).write_bytes(b"the user's")
    kept = [".0.pending.png", ".١٢٣٤٥٦.pending.png", ".nst_tf-0123.png"]  # names the job never makes
    for name in kept:
        (frames_folder / name).write_bytes(b"the user's")
    capsys.readouterr()
    assert main(argv) == 0
    assert "3 of 5 frames are done already; going on from frame 4" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == sorted([*users, "silent.frames", "silent.mp4"])
    assert sorted(name for name in os.listdir(frames_folder) if name.startswith(".")) == sorted(kept)
    for name in kept:
        (frames_folder / name).unlink()
    (out / "silent.mp4").unlink()
    (frames_folder / "manifest.jsonl").write_text("\n".join(lines[:4]) + "\n")
    users = (frames_folder / "000004.png").read_bytes()
    (frames_folder / "000005.png").unlink()
    assert main(argv) == 2  # 000004.png is not recorded: the user's, whatever its place
    assert "000004.png is not a frame manifest.jsonl records" in capsys.readouterr().err
    assert (frames_folder / "000004.png").read_bytes() == users


def test_a_finished_video_stays_done_whatever_became_of_its_frames(workspace, new_weights_file, clips, capsys):
    argv = _args(workspace, new_weights_file, clips / "silent.mp4")
    assert main(argv) == 0
    made = (workspace / "out" / "silent.mp4").read_bytes()
    (workspace / "out" / "silent.frames" / "000003.png").unlink()
    capsys.readouterr()
    assert main(argv) == 0  # was refused: the job's own, recorded video "exists"
    assert "silent.mp4 is done already (5 frames)" in capsys.readouterr().err
    assert (workspace / "out" / "silent.mp4").read_bytes() == made


def test_an_audio_codec_mp4_cannot_hold_is_encoded_again_as_aac(workspace, new_weights_file, tmp_path, capsys):
    # Microsoft ADPCM, as old cameras write: copied into MP4, ffmpeg fails, and the failure was not looked at
    # (status 0, an empty video recorded as done).
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=0.5", "-f", "lavfi", "-i", "sine=duration=0.5",
            "-c:v", "mjpeg", "-c:a", "adpcm_ms", tmp_path / "cam.avi")  # fmt: skip
    assert main(_args(workspace, new_weights_file, tmp_path / "cam.avi", "--temporal_weight", "0")) == 0
    assert "(5 frames at 10 per second, with its audio encoded again as AAC)" in capsys.readouterr().out
    made = probe(str(workspace / "out" / "cam.mp4"))
    assert (made.frames, made.audio) == (5, True)


def test_ffmpeg_failing_to_encode_is_an_error(tmp_path):
    with pytest.raises(FfmpegError, match="ffmpeg could not encode .*missing/x.mp4: "):
        encode(str(tmp_path / "missing" / "x.mp4"), moving(2, 48, 64, 2), (64, 48), 5.0)
    for size, fps, frames_, message in [
        ((64, 48), 5.0, [], "no frames to encode"),
        ((63, 47), 5.0, moving(1, 47, 63, 1), "two even whole numbers"),
        ((64, 48), float("nan"), moving(1, 48, 64, 1), "a number from 0 to 1000"),
    ]:
        with pytest.raises(NSTError, match=message):
            encode(str(tmp_path / "x.mp4"), frames_, size, fps)


def test_frames_come_from_the_stream_probed_at_its_size(tmp_path):
    # A second video stream marked as the default was decoded instead, its bytes cut into frames of the first's size.
    _ffmpeg("-f", "lavfi", "-i", "color=blue:size=64x48:rate=10:duration=0.5",
            "-f", "lavfi", "-i", "color=red:size=128x96:rate=10:duration=0.5",
            "-map", "0", "-map", "1", "-c:v", "libx264", "-disposition:v:0", "0", "-disposition:v:1", "default",
            tmp_path / "two.mp4")  # fmt: skip
    clip = probe(str(tmp_path / "two.mp4"))
    decoded = list(frames(clip))
    assert clip.size == (64, 48) and len(decoded) == clip.frames == 5
    assert all(frame.shape == (48, 64, 3) and frame[..., 2].mean() > 200 > frame[..., 0].mean() for frame in decoded)


def test_a_video_named_like_an_ffmpeg_protocol_is_read_as_a_file(workspace, new_weights_file, clips, monkeypatch):
    monkeypatch.chdir(workspace)
    shutil.copy(clips / "silent.mp4", workspace / "take:2.mp4")  # ffmpeg read "take:" as a protocol
    argv = _args(workspace, new_weights_file, "take:2.mp4")
    assert main(argv) == 0
    assert probe(str(workspace / "out" / "take:2.mp4")).frames == 5


def test_an_absurd_frame_size_is_refused_before_the_styles_are_fitted_to_it(workspace, new_weights_file, clips, capsys):
    # The styles were resized to the frame size before the memory check: gigabytes, or the kernel's OOM killer.
    assert main(_args(workspace, new_weights_file, clips / "silent.mp4", "--max_size", "100000")) == 2
    err = capsys.readouterr().err
    assert "a run at 100000x75000 needs about" in err and err.count("\n") == 1
    assert not (workspace / "out").exists()


def test_frame_names_past_a_million_frames_are_recognised():
    assert [frame_name(i) for i in (0, 999_998, 999_999)] == ["000001.png", "999999.png", "1000000.png"]
    assert all(is_frame_name(frame_name(i)) for i in (0, 999_999, 12_345_678))
    others = ("000000.png", "00001.png", "１２３４５６.png", "000001.jpg", "x00001.png")  # fullwidth digits too
    assert not any(is_frame_name(name) for name in others)


@pytest.mark.parametrize("where", ["style", "each_style"])
def test_a_video_where_an_image_is_needed_is_named_as_a_video(workspace, new_weights_file, clips, capsys, where):
    clip = str(clips / "silent.mp4")
    if where == "style":
        argv = _args(workspace, new_weights_file, workspace / "content.png", "--style_image_filename", clip)
    else:
        argv = _args(workspace, new_weights_file, clip, "--each_style")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "silent.mp4: is a video, where an image is needed" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("how, stream", [("closed", 2)])  # a full pipe: test_cli_signals, the same writer
def test_the_status_does_not_depend_on_whether_messages_can_be_written(workspace, new_weights_file, clips, stream, how):
    # With standard error closed or on a full device, the progress line's first write ended the job with
    # status 1 (stdout too), and bad input was 1, not 2.
    def redirect():
        if how == "closed":
            os.close(stream)
        else:
            os.dup2(os.open("/dev/full", os.O_WRONLY), stream)

    def run(*argv):
        command = [sys.executable, "-m", "nst_tf", *argv]
        return subprocess.run(command, preexec_fn=redirect, timeout=300).returncode

    assert run(*_args(workspace, new_weights_file, clips / "silent.mp4", epochs=1)) == 0
    assert probe(str(workspace / "out" / "silent.mp4")).frames == 5
    assert run("--content_image_filename", str(workspace / "missing.mp4")) == 2


def test_a_video_named_but_not_recorded_when_the_run_was_killed_is_recorded(workspace, new_weights_file, clips, capsys):
    # Killed between linking the counted video to its name and appending its line: every rerun was refused
    # ("exists; nst_tf never replaces it"). The name is a hard link of the job's partial file: it is the job's.
    argv = _args(workspace, new_weights_file, clips / "silent.mp4")
    assert main(argv) == 0
    out = workspace / "out"
    manifest = out / "silent.frames" / "manifest.jsonl"
    manifest.write_text("".join(line for line in manifest.read_text().splitlines(True) if "../silent.mp4" not in line))
    os.link(out / "silent.mp4", out / ".silent.mp4.0123456789abcdef.partial.mp4")
    made = (out / "silent.mp4").read_bytes()
    capsys.readouterr()
    assert main(argv) == 0
    note = "silent.mp4 was made but not recorded (a stop between the two); it is recorded now"
    assert note in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["silent.frames", "silent.mp4"] and (out / "silent.mp4").read_bytes() == made
    assert "../silent.mp4" in manifest.read_text()
    capsys.readouterr()
    assert main(argv) == 0 and "silent.mp4 is done already" in capsys.readouterr().err
