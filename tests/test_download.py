"""The weights downloader, exercised on local file:// URLs (tests never use the network)."""

import hashlib

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
    with pytest.raises(NSTError, match="neither known layout; nothing was saved"):
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
