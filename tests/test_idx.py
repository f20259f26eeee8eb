"""IDX files (MNIST's format) and the Fashion-MNIST data set built on them: every damaged
file is named before any work, folders are found where the module says, and the splits
are the stated ones. The files are built here, in the real format and at a small size."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from orthocore import data
from orthocore.data import idx, mnist


def idx_bytes(values: np.ndarray) -> bytes:
    code = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B, np.dtype(">i4"): 0x0C,
            np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}[values.dtype]  # fmt: skip
    return bytes([0, 0, code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape) + values.tobytes()


def write_idx_folder(folder: Path, train: int = 50, test: int = 20, *, gz: bool = True, prefix: str = "",
                     size: int = 28, classes: int = 10) -> Path:  # fmt: skip
    """The four files of an MNIST-style release: labels in turn, and images of noise
    with a bright band whose row tells the class (a pattern a small CNN learns at once)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for part, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 100, (count, size, size), dtype=np.uint8)
        labels = (np.arange(count) % classes).astype(np.uint8)
        for image, label in zip(images, labels):
            row = int(label) * (size - 2) // classes
            image[row : row + 2] = 255
        for kind, values in (("images-idx3", images), ("labels-idx1", labels)):
            raw = idx_bytes(values)
            name = f"{prefix}{part}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
    return folder


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_every_idx_type_reads_back_its_values(tmp_path, dtype):
    values = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype) if dtype != "u1" else np.arange(24, dtype="u1").reshape(2, 3, 4)
    (tmp_path / "x").write_bytes(idx_bytes(values))
    read = idx.read_idx(tmp_path / "x", 3)
    assert read.values.dtype.isnative and np.array_equal(read.values, values)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: b"", "is empty; expected an IDX file"),
        (lambda raw: raw[:-1], "is truncated: 2,367 bytes (uncompressed) where its header 3×28×28 of uint8 needs 2,368"),
        (lambda raw: raw + b"\0", "is longer than its header says"),
        (lambda raw: raw[:10], "is truncated inside its header"),
        (lambda raw: b"\x1f\x8b" + raw[2:], "starts with 1f8b0803, not an IDX magic number"),
        (lambda raw: raw[:2] + b"\x07" + raw[3:], "starts with 00000703, not an IDX magic number"),
        (lambda raw: raw[:3] + b"\x02" + raw[4:], "has 2 dimension(s); expected 3"),
    ],
    ids=["empty", "truncated", "padded", "cut-header", "magic", "type", "dimensions"],
)
def test_a_damaged_idx_file_is_named_with_what_was_expected(tmp_path, damage, message):
    raw = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    (tmp_path / "images").write_bytes(damage(raw))
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'images'}: {message}")):
        idx.read_idx(tmp_path / "images", 3)


def test_a_cut_gzip_stream_is_named(tmp_path):
    whole = gzip.compress(idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8)))
    (tmp_path / "images.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="images.gz: is not a whole gzip file"):
        idx.read_idx(tmp_path / "images.gz", 3)


@pytest.mark.parametrize("gz", [True, False])
def test_a_folder_of_the_four_files_gives_the_stated_splits(tmp_path, gz):
    folder = write_idx_folder(tmp_path / "f", train=50, test=20, gz=gz)
    train, val, test = (data.open_dataset(f"mnist:{folder}", split) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (45, 5, 20)  # 10 % of the training files validate
    assert train.input_shape == (1, 28, 28) and train.num_classes == 10
    image, label = test[3]
    assert image.dtype.is_floating_point and 0 <= image.min() and image.max() <= 1 and label == 3
    # train and val are disjoint and together the training files, in a fixed seeded split
    raw = idx.read_idx(folder / ("train-images-idx3-ubyte" + (".gz" if gz else "")), 3).values
    rows = [tuple(map(bytes, d.images[:, 0].numpy())) for d in (train, val)]
    assert sorted(rows[0] + rows[1]) == sorted(tuple(map(bytes, raw)))
    again = data.open_dataset(f"mnist:{folder}", "val")
    assert (again.images == val.images).all()


def test_torchvision_layout_and_a_common_prefix_are_found(tmp_path):
    write_idx_folder(tmp_path / "root" / "FashionMNIST" / "raw", gz=False)
    with pytest.warns(UserWarning, match="differs from Fashion-MNIST's release"):  # random files, not the release
        assert len(data.open_dataset(f"fashion-mnist:{tmp_path / 'root'}", "test")) == 20
    write_idx_folder(tmp_path / "emnist", prefix="emnist-letters-", classes=27)
    assert data.open_dataset(f"mnist:{tmp_path / 'emnist'}", "train").num_classes == 27


def test_bare_fashion_mnist_looks_in_orthocore_data_first(tmp_path, monkeypatch):
    write_idx_folder(tmp_path / "fashion-mnist", train=30)
    monkeypatch.setenv("ORTHOCORE_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="differs from Fashion-MNIST's release"):
        assert len(data.open_dataset("fashion-mnist", "train")) == 27


def test_nothing_found_says_how_to_get_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ORTHOCORE_DATA", str(tmp_path))
    monkeypatch.setattr(mnist, "DEBIAN_FOLDER", str(tmp_path / "debian"))
    with pytest.raises(FileNotFoundError) as error:
        data.open_dataset("fashion-mnist")
    message = str(error.value)
    assert "apt-get install dataset-fashion-mnist" in message and "torchvision.datasets.FashionMNIST(ROOT, download=True)" in message
    assert str(tmp_path / "fashion-mnist") in message and str(tmp_path / "debian") in message


@pytest.mark.parametrize("case", ["missing-test-labels", "counts-differ", "two-copies", "other-size"])
def test_an_inconsistent_folder_is_named_before_any_work(tmp_path, case):
    folder = write_idx_folder(tmp_path / "f")
    if case == "missing-test-labels":
        (folder / "t10k-labels-idx1-ubyte.gz").unlink()
        match = "lacks t10k-labels-idx1-ubyte"
    elif case == "counts-differ":
        (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(19, dtype=np.uint8))))
        match = "holds 20 images but .*t10k-labels-idx1-ubyte.gz 19 labels"
    elif case == "two-copies":
        (folder / "train-images-idx3-ubyte").write_bytes(gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes()))
        match = "holds 2 files for train-images-idx3-ubyte"
    else:
        (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((20, 32, 32), np.uint8))))
        match = "the test images of .* are"
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        data.open_dataset(f"mnist:{folder}", "train")


def test_a_damaged_file_stops_training_in_one_line_naming_it(tmp_path, capsys):
    from orthocore import cli

    folder = write_idx_folder(tmp_path / "f")
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-7]))
    out = tmp_path / "run"
    assert cli.main(["train", "--data", f"fashion-mnist:{folder}", "--out", str(out), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"{images}: is truncated" in error
    assert not out.exists()


@pytest.mark.skipif(not Path(mnist.DEBIAN_FOLDER).is_dir(), reason="dataset-fashion-mnist is not installed")
def test_the_installed_fashion_mnist_is_the_release():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a digest that differs warns
        train, val, test = (data.open_dataset("fashion-mnist", split) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (54_000, 6_000, 10_000)
    assert np.bincount(test.labels.numpy()).tolist() == [1000] * 10
    assert np.bincount(np.concatenate([train.labels.numpy(), val.labels.numpy()])).tolist() == [6000] * 10
    pixels = np.concatenate([train.images.numpy(), val.images.numpy()]).astype(np.float64) / 255
    assert pixels.mean() == pytest.approx(0.2860, abs=1e-4)  # the mean the models normalise with


def test_the_fashion_mnist_study_runs_end_to_end_on_tiny_files(tmp_path):
    """The demo's Fashion-MNIST configuration, with its data on tiny files of the format
    and a small budget: every stage runs on the small CNN and the test split."""
    from orthocore.study import demo_config, run_study

    folder = write_idx_folder(tmp_path / "f", train=300, test=60)
    config = demo_config(str(tmp_path / "study"), "fashion-mnist")
    assert (config.data, config.arch, config.eps[-1]) == ("fashion-mnist", "fmnist_cnn", 0.3)
    config.data = f"fashion-mnist:{folder}"
    budget = {"max_epochs": 2, "eval_every": 1, "n_images": 20, "seeds": [0], "gradcam_images": 2,
              "white_box_steps": 2, "restarts": 1, "square_queries": 4, "surrogates": 0, "adaptive": 1,
              "eps": [0.1, 0.3], "security_eps": [0.1, 0.3], "workers": 1, "device": "cpu"}  # fmt: skip
    for key, value in budget.items():
        setattr(config, key, value)
    with pytest.warns(UserWarning, match="differs from Fashion-MNIST's release"):
        results = run_study(config, progress=False)
    assert {r["eps"] for r in results["transfer"]} == {0.1, 0.3}
    assert results["security"]["verdicts"] and results["defenses"]
    report = (tmp_path / "study" / "report.md").read_text()
    assert f"fashion-mnist:{folder}" in report and "fmnist_cnn" in report
