"""The weights downloader, exercised on local file:// URLs (tests never use the network)."""

import hashlib
import os

import pytest

from nst_tf import NSTError
from nst_tf import download as dl


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "served.mat"
    path.write_bytes(b"pretend weights " * 5000)
    return path


def known(path):
    return {hashlib.md5(path.read_bytes()).hexdigest(): "test layout"}


def test_download_saves_a_file_with_a_known_checksum(tmp_path, source, capsys):
    destination = tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat"
    md5 = dl.download(source.as_uri(), str(destination), known_md5=known(source))
    assert destination.read_bytes() == source.read_bytes()
    assert md5 == hashlib.md5(source.read_bytes()).hexdigest()
    assert not (tmp_path / "pretrained-model" / "imagenet-vgg-verydeep-19.mat.part").exists()
    assert "MiB" in capsys.readouterr().err


def test_an_unknown_checksum_saves_nothing(tmp_path, source):
    destination = tmp_path / "weights.mat"
    with pytest.raises(
        NSTError,
        match=r"has MD5 [0-9a-f]{32}, expected 106118b7cf60435e6d8e04f6a6dc3657 or 8ee3263992981a1d26e73b3ca028a123; "
        "nothing was saved",
    ):
        dl.download(source.as_uri(), str(destination))
    assert list(tmp_path.iterdir()) == [source]


def test_an_existing_file_is_never_replaced(tmp_path, source):
    destination = tmp_path / "weights.mat"
    destination.write_bytes(b"mine")
    with pytest.raises(NSTError, match="exists; remove it first"):
        dl.download(source.as_uri(), str(destination), known_md5=known(source))
    assert destination.read_bytes() == b"mine"


def test_a_failed_download_is_one_line_and_exit_2(tmp_path, capsys):
    status = dl.main(["--url", (tmp_path / "absent.mat").as_uri(), "--output", str(tmp_path / "w.mat")])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("nst-tf download: error: download of file://") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_known_checksums_are_the_two_published_layouts():
    assert set(dl.KNOWN_MD5) == {"106118b7cf60435e6d8e04f6a6dc3657", "8ee3263992981a1d26e73b3ca028a123"}
    assert dl.URL.endswith("/imagenet-vgg-verydeep-19.mat")


KERAS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras cache folder, named by KERAS_HOME as Keras reads it."""
    home = tmp_path / "keras-home"
    (home / "models").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


def test_known_keras_checksum_and_address_are_keras_own():
    assert dl.KERAS_KNOWN_MD5.keys() == {"253f8cb515780f3b799900260a226db6"}
    assert dl.KERAS_URL == ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_FILE)


def test_keras_weights_are_copied_from_keras_cache(tmp_path, keras_home, capsys):
    cached = keras_home / "models" / KERAS_FILE
    cached.write_bytes(b"cached keras weights " * 3000)
    destination = tmp_path / "pretrained-model" / KERAS_FILE
    absent_url = (tmp_path / "nowhere.h5").as_uri()  # a download would fail
    md5, origin = dl.fetch_keras_weights(absent_url, str(destination), known_md5=known(cached))
    assert destination.read_bytes() == cached.read_bytes()
    assert origin == str(cached) and md5 == hashlib.md5(cached.read_bytes()).hexdigest()
    assert cached.exists() and not (tmp_path / "pretrained-model" / (KERAS_FILE + ".part")).exists()
    assert "found Keras' cached copy" in capsys.readouterr().err


def test_keras_cache_is_under_home_without_keras_home(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    assert dl.keras_cache_dir() == os.path.join(str(tmp_path / "home"), ".keras", "models")
    cached = tmp_path / "home" / ".keras" / "models" / KERAS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"weights from home " * 100)
    destination = tmp_path / "w.h5"
    _, origin = dl.fetch_keras_weights((tmp_path / "nowhere").as_uri(), str(destination), known_md5=known(cached))
    assert origin == str(cached) and destination.read_bytes() == cached.read_bytes()


def test_a_cached_copy_with_an_unknown_checksum_is_left_alone_and_the_file_downloaded(
    tmp_path, keras_home, source, capsys
):
    cached = keras_home / "models" / KERAS_FILE
    cached.write_bytes(b"a damaged copy")
    destination = tmp_path / "w.h5"
    _, origin = dl.fetch_keras_weights(source.as_uri(), str(destination), known_md5=known(source))
    assert origin == source.as_uri() and destination.read_bytes() == source.read_bytes()
    assert cached.read_bytes() == b"a damaged copy"
    assert "not using the cached copy: downloaded file has MD5" in capsys.readouterr().err


def test_without_a_cached_copy_the_keras_file_is_downloaded(tmp_path, keras_home, source):
    destination = tmp_path / "w.h5"
    md5, origin = dl.fetch_keras_weights(source.as_uri(), str(destination), known_md5=known(source))
    assert origin == source.as_uri() and destination.read_bytes() == source.read_bytes()
    assert md5 == hashlib.md5(source.read_bytes()).hexdigest()


def test_keras_weights_never_replace_an_existing_file(tmp_path, keras_home, source):
    (keras_home / "models" / KERAS_FILE).write_bytes(source.read_bytes())
    destination = tmp_path / "w.h5"
    destination.write_bytes(b"mine")
    with pytest.raises(NSTError, match="exists; remove it first"):
        dl.fetch_keras_weights(source.as_uri(), str(destination), known_md5=known(source))
    assert destination.read_bytes() == b"mine"


def test_main_with_keras_weights_reports_the_cached_copy(tmp_path, keras_home, monkeypatch, capsys):
    cached = keras_home / "models" / KERAS_FILE
    cached.write_bytes(b"cached keras weights " * 10)
    md5 = hashlib.md5(cached.read_bytes()).hexdigest()
    monkeypatch.setattr(dl, "KERAS_KNOWN_MD5", {md5: "test file"})
    destination = tmp_path / "out" / KERAS_FILE
    argv = ["--weights", "keras", "--url", (tmp_path / "nowhere.h5").as_uri(), "--output", str(destination)]
    assert dl.main(argv) == 0
    assert destination.read_bytes() == cached.read_bytes()
    assert capsys.readouterr().out == f"saved {destination} (MD5 {md5}, test file, copied from {cached})\n"


def test_main_with_keras_weights_checks_keras_checksum(tmp_path, keras_home, source, capsys):
    argv = ["--weights", "keras", "--url", source.as_uri(), "--output", str(tmp_path / "w.h5")]
    assert dl.main(argv) == 2
    err = capsys.readouterr().err
    assert "nst-tf download: error: downloaded file has MD5" in err
    assert "expected 253f8cb515780f3b799900260a226db6; nothing was saved" in err
    assert not (tmp_path / "w.h5").exists() and not (tmp_path / "w.h5.part").exists()


def test_an_unknown_weights_kind_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        dl.main(["--weights", "caffe"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'caffe'" in capsys.readouterr().err
