"""Data sets: digits split, CIFAR-10 python batches through the restricted unpickler,
class folders with the 80/20 split, and the errors for bad folders."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from orthocore import data
from orthocore.data import ImageFolderDataset, load_cifar10, load_digits, open_dataset, safe_load


def test_digits_split_is_fixed_disjoint_and_complete():
    train, val = load_digits("train"), load_digits("val")
    assert (len(train), len(val)) == (1438, 359)
    assert train.input_shape == (1, 8, 8) and train.num_classes == 10
    everything = load_digits("all")
    rows = lambda d: {tuple(img.flatten().tolist()) + (int(lbl),) for img, lbl in zip(d.images, d.labels)}  # noqa: E731
    assert rows(train) | rows(val) == rows(everything)
    assert torch.equal(load_digits("val").images, val.images)  # same split every time
    image, label = train[0]
    assert image.dtype == torch.float32 and 0 <= image.min() and image.max() <= 1 and 0 <= label < 10


@pytest.mark.parametrize("shipped_file", [True, False], ids=["shipped-file", "sklearn-fallback"])
def test_digits_are_scikit_learns(monkeypatch, shipped_file):
    """Read from the file scikit-learn ships (without importing it), or through its own
    reader where that file is not where expected: scikit-learn's load_digits either way."""
    from sklearn.datasets import load_digits as sklearn_digits

    from orthocore.data import digits

    if not shipped_file:
        monkeypatch.setattr(digits.importlib.util, "find_spec", lambda name: None)
    digits._digits_arrays.cache_clear()
    try:
        pixels, targets = digits._digits_arrays()
    finally:
        digits._digits_arrays.cache_clear()
    bunch = sklearn_digits()
    assert np.array_equal(pixels, bunch.images) and np.array_equal(targets, bunch.target)
    assert load_digits("all").images.flatten(1).mul(16).tolist() == bunch.data.tolist()


def write_cifar_batch(path, images, labels, protocol=2):
    """A batch in the official format: dict with bytes keys, uint8 (N, 3072) data."""
    with open(path, "wb") as file:
        pickle.dump({b"batch_label": b"test", b"labels": list(labels), b"data": images.reshape(len(labels), -1)}, file, protocol)


@pytest.fixture
def cifar_folder(cifar10_folder):
    return cifar10_folder(per_batch=4, label=None)


def test_cifar10_reads_python_batches(cifar_folder):
    train = load_cifar10(cifar_folder, "train")
    assert len(train) == 20 and train.input_shape == (3, 32, 32)
    raw = pickle.load(open(cifar_folder / "data_batch_2", "rb"))  # noqa: SIM115 (trusted: written above)
    image, label = train[5]  # second image of data_batch_2
    plane = raw[b"data"][1].reshape(3, 32, 32)  # red, green, blue planes of 32x32
    torch.testing.assert_close(image, torch.from_numpy(plane).float() / 255)
    assert label == raw[b"labels"][1]
    assert len(load_cifar10(cifar_folder, "val")) == 4


def test_cifar10_augmentation_is_a_random_crop_and_flip(cifar_folder):
    plain, augmented = load_cifar10(cifar_folder, "train"), load_cifar10(cifar_folder, "train", augment=True)
    assert augmented.augmented and not plain.augmented
    torch.manual_seed(0)
    views = [augmented[0][0] for _ in range(8)]
    assert all(view.shape == (3, 32, 32) for view in views)
    assert any(not torch.equal(view, plain[0][0]) for view in views)


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_restricted_unpickler_refuses_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": RunsCode(), b"labels": [1]}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"test_batch: refused to load global (posix|os)\.system"):
        safe_load(path)
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        load_cifar10(tmp_path, "val")
    assert not (tmp_path / "pwned").exists()


def test_restricted_unpickler_refuses_object_arrays(tmp_path):
    path = tmp_path / "objects"
    path.write_bytes(pickle.dumps({b"data": np.array([{"a": 1}], dtype=object)}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        safe_load(path)


def test_restricted_unpickler_accepts_plain_data(tmp_path):
    value = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "names": ["a", "b"], "n": 3, "x": 1.5}
    path = tmp_path / "plain"
    path.write_bytes(pickle.dumps(value, protocol=2))
    loaded = safe_load(path)
    assert np.array_equal(loaded[b"data"], value[b"data"]) and loaded["names"] == ["a", "b"]


def test_cifar10_folder_errors(tmp_path, cifar_folder):
    with pytest.raises(FileNotFoundError, match=f"CIFAR-10 folder '{tmp_path / 'nope'}' does not exist"):
        load_cifar10(tmp_path / "nope")
    os.remove(cifar_folder / "data_batch_3")
    with pytest.raises(FileNotFoundError, match="lacks data_batch_3"):
        load_cifar10(cifar_folder, "train")
    (cifar_folder / "test_batch").write_bytes(pickle.dumps({b"labels": [1]}, protocol=2))
    with pytest.raises(ValueError, match="test_batch: expected a CIFAR-10 python batch"):
        load_cifar10(cifar_folder, "val")


def write_image_folder(root, counts):
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(root / name / f"{i}.png")


def test_image_folder_split_is_80_20_per_class(tmp_path):
    write_image_folder(tmp_path, {"cat": 10, "dog": 5})
    train = ImageFolderDataset(tmp_path, "train", image_size=16, resize=18)
    val = ImageFolderDataset(tmp_path, "val", image_size=16, resize=18)
    everything = ImageFolderDataset(tmp_path, "all", image_size=16, resize=18)
    assert train.classes == ["cat", "dog"] and train.num_classes == 2
    assert [label for _, label in val.samples].count(0) == 2 and [label for _, label in val.samples].count(1) == 1
    assert set(train.samples).isdisjoint(val.samples) and set(train.samples) | set(val.samples) == set(everything.samples)
    image, label = train[0]
    assert image.shape == (3, 16, 16) and 0 <= image.min() and image.max() <= 1 and label == 0


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="has no class sub-folders"):
        ImageFolderDataset(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=f"'{tmp_path / 'empty'}' holds no images"):
        ImageFolderDataset(tmp_path)


def test_open_dataset_detects_the_format(tmp_path, cifar_folder):
    assert len(open_dataset("digits", "val")) == 359
    assert isinstance(open_dataset(str(cifar_folder), "train"), data.TensorImageDataset)
    assert len(open_dataset(f"cifar10:{cifar_folder}", "val")) == 4
    folder = tmp_path / "folders"
    write_image_folder(folder, {"a": 5, "b": 5})
    assert isinstance(open_dataset(str(folder), "val"), ImageFolderDataset)
    with pytest.raises(FileNotFoundError, match="neither 'digits', 'fashion-mnist' nor an existing folder"):
        open_dataset(str(tmp_path / "nothing"))


def test_bad_image_files_are_all_named_in_one_error_when_the_folder_is_opened(tmp_path):
    root = tmp_path / "data"
    write_image_folder(root, {"cat": 3, "dog": 3})
    (root / "cat" / "notes.png").write_text("not an image")
    (root / "cat" / "empty.png").write_bytes(b"")
    outside = tmp_path / "outside.png"
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(outside)
    (root / "dog" / "link.png").symlink_to(outside)
    (root / "dog" / "inside.png").symlink_to(root / "cat" / "0.png")  # a link within the root is fine
    with pytest.raises(ValueError, match="3 bad file") as error:
        ImageFolderDataset(root)
    message = str(error.value)
    assert "notes.png: is truncated or not a readable image" in message and "empty.png: is empty" in message
    assert "link.png: resolves to" in message and "outside the data folder" in message
    assert "inside.png" not in message


def test_images_over_the_pixel_limit_are_refused_and_the_limit_can_be_raised(tmp_path):
    write_image_folder(tmp_path, {"a": 2, "b": 2})  # 20×30 = 600 pixels each
    with pytest.raises(ValueError, match=r"(?s)4 bad file.*has 30×20 = 600 pixels, over max_pixels = 599"):
        ImageFolderDataset(tmp_path, max_pixels=599)
    assert len(ImageFolderDataset(tmp_path, max_pixels=600)) == 4


def test_training_on_a_bad_folder_fails_before_writing_anything(tmp_path):
    from orthocore.train import TrainConfig, train

    write_image_folder(tmp_path / "data", {"a": 2, "b": 2})
    (tmp_path / "data" / "a" / "bad.png").write_bytes(b"")
    out = tmp_path / "run"
    config = TrainConfig(out=str(out), data=f"folder:{tmp_path / 'data'}", arch="imagenet_resnet34", progress=False)
    with pytest.raises(ValueError, match="bad.png: is empty"):
        train(config)
    assert not out.exists()


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "wrong-count"])
def test_a_damaged_cifar10_batch_is_one_line_naming_it_before_any_work(tmp_path, cifar_folder, kind, capsys):
    from orthocore import cli

    batch = cifar_folder / "data_batch_2"
    if kind == "zero-byte":
        batch.write_bytes(b"")
    elif kind == "truncated":
        batch.write_bytes(batch.read_bytes()[:-100])
    else:  # 4 labels, 3 images
        write_cifar_batch(batch, np.zeros((3, 3, 32, 32), dtype=np.uint8), [0, 1, 2, 3])
    out = tmp_path / "run"
    assert cli.main(["train", "--data", f"cifar10:{cifar_folder}", "--arch", "resnet20", "--out", str(out),
                     "--no-progress"]) == 2  # fmt: skip
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and f"{batch}" in error and "Traceback" not in error
    assert not out.exists()


def test_a_truncated_image_in_a_folder_is_named(tmp_path):
    write_image_folder(tmp_path, {"a": 3, "b": 3})
    whole = (tmp_path / "a" / "1.png").read_bytes()
    (tmp_path / "a" / "1.png").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"(?s)1 bad file.*1.png: is truncated or not a readable image"):
        ImageFolderDataset(tmp_path)
