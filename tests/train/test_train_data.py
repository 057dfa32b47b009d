"""Data: the digits split is stratified, disjoint and the same for the same seed; the image
folder reads class folders of .npy arrays (and PNGs through Pillow, or says to install it);
a model trains on it; bad folders are clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import threads

import npas.train as T
from npas.errors import NpasError


def test_digits_split() -> None:
    from sklearn.datasets import load_digits

    a, b, c = T.digits(seed=0), T.digits(seed=0), T.digits(seed=1)
    assert a.input_shape == (1, 16, 16) and len(a.train) + len(a.val) == 1797
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert not torch.equal(a.train.tensors[1], c.train.tensors[1])
    yt, yv = a.train.tensors[1].numpy(), a.val.tensors[1].numpy()
    # stratified: each class is split 75/25 to within one image
    target = load_digits().target
    for k in range(10):
        n = int((target == k).sum())
        assert abs(int((yv == k).sum()) - round(n * 0.25)) <= 1
    # disjoint: no validation image is a training image
    xt = a.train.tensors[0].reshape(len(a.train), -1).numpy()
    xv = a.val.tensors[0].reshape(len(a.val), -1).numpy()
    assert not (set(map(bytes, xt.round(5))) & set(map(bytes, xv.round(5))))
    # standardised with the training images' statistics
    assert abs(float(xt.mean())) < 1e-4 and abs(float(xt.std()) - 1) < 1e-3
    assert len(yt) == len(xt)
    eight = T.digits(seed=0, size=8)
    assert eight.input_shape == (1, 8, 8)


def write_folder(root: Path, n: int = 12, shape: tuple[int, ...] = (10, 10)) -> None:
    """Two classes told apart by brightness: dark and light noise images, uint8 .npy."""
    rng = np.random.default_rng(0)
    for label, base in (("dark", 40), ("light", 200)):
        (root / label).mkdir(parents=True)
        for i in range(n):
            img = np.clip(base + rng.normal(0, 20, shape), 0, 255).astype(np.uint8)
            np.save(root / label / f"{i}.npy", img)


def test_image_folder_of_arrays(tmp_path: Path) -> None:
    threads()
    write_folder(tmp_path / "d", shape=(10, 10, 3))
    s = T.image_folder(tmp_path / "d", seed=0, size=8)
    assert s.classes == ["dark", "light"] and s.input_shape == (3, 8, 8)
    assert len(s.train) + len(s.val) == 24 and len(s.val) == 4  # round(20% of 12) per class
    a = T.image_folder(tmp_path / "d", seed=0, size=8)
    assert torch.equal(a.val.tensors[0], s.val.tensors[0])
    # a model learns the two classes
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(4, 2),
    )  # fmt: skip
    model, log = T.fit(model, s.train, s.val, epochs=15, lr=0.1, batch_size=4, progress=False)
    assert log[-1].val_accuracy == 1.0


def test_image_folder_with_train_and_val(tmp_path: Path) -> None:
    write_folder(tmp_path / "d" / "train", n=5)
    write_folder(tmp_path / "d" / "val", n=3)
    s = T.image_folder(tmp_path / "d")
    assert (len(s.train), len(s.val), s.input_shape) == (10, 6, (1, 10, 10))
    assert s.val.tensors[1].tolist() == [0, 0, 0, 1, 1, 1]


def test_png_needs_pillow_or_reads(tmp_path: Path) -> None:
    write_folder(tmp_path / "d", n=3)
    try:
        from PIL import Image
    except ImportError:
        (tmp_path / "d" / "dark" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        with pytest.raises(NpasError, match="pip install pillow"):
            T.image_folder(tmp_path / "d")
        return
    Image.fromarray(np.full((10, 10), 7, np.uint8)).save(tmp_path / "d" / "dark" / "9.png")
    s = T.image_folder(tmp_path / "d", val_fraction=0.0001)
    assert len(s.train) == 7 and s.input_shape == (1, 10, 10)


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(NpasError, match="no such directory"):
        T.image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NpasError, match="no class folders"):
        T.image_folder(tmp_path / "empty")
    write_folder(tmp_path / "mixed", n=3)
    np.save(tmp_path / "mixed" / "dark" / "odd.npy", np.zeros((12, 12), np.uint8))
    with pytest.raises(NpasError, match="image-size"):
        T.image_folder(tmp_path / "mixed")
    assert len(T.image_folder(tmp_path / "mixed", size=10, val_fraction=0.3).train) > 0


def test_prune_takes_any_dataloader(tmp_path: Path) -> None:
    """A caller's own DataLoaders (its batch size, its shuffling generator) are used as given,
    and a checkpointed run over them resumes to the same weights."""
    from torch.utils.data import DataLoader
    from train_helpers import CONV3X3, data, dense_model

    threads()
    s = data()

    def loaders() -> tuple[DataLoader, DataLoader]:
        gen = torch.Generator().manual_seed(5)
        return (DataLoader(s.train, batch_size=50, shuffle=True, generator=gen, drop_last=True),
                DataLoader(s.val, batch_size=100))  # fmt: skip

    config = {name: ("pattern", 6.0) for name in CONV3X3}
    full, rep = T.prune(dense_model(), config, *loaders(), method="rgl", epochs=4,
                        progress=False)  # fmt: skip
    assert rep.accuracy_after > 0.9
    ckpt = tmp_path / "c.ckpt"
    T.prune(dense_model(), config, *loaders(), method="rgl", epochs=4, checkpoint=ckpt,
            stop_after=2, progress=False)  # fmt: skip
    resumed, _ = T.prune(dense_model(), config, *loaders(), method="rgl", epochs=4,
                         checkpoint=ckpt, resume=True, progress=False)  # fmt: skip
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
