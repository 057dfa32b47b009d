"""Training data: scikit-learn's bundled digits, an image folder, or any torch DataLoader.

Every split and shuffle is drawn from a seed, so two runs with the same seed see the same
batches in the same order (and a resumed run continues the order, see trainer.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from npas.errors import NpasError

TASKS = ("digits",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
ARRAY_SUFFIX = ".npy"


@dataclass
class Split:
    """A train and a validation set, with the input shape [C, H, W] and the class names."""

    train: Dataset
    val: Dataset
    input_shape: tuple[int, ...]
    classes: list[str]


def _standardise(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    # statistics of the training images only, so validation stays unseen
    return (x - ref.mean()) / ref.std().clamp_min(1e-6)


def _stratified(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices, each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_val = round(len(idx) * val_fraction)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def digits(seed: int = 0, size: int = 16, val_fraction: float = 0.25) -> Split:
    """scikit-learn's digits (1797 8x8 grey images, 10 classes), bilinearly upsampled to
    size x size, standardised, split per class with `seed`."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise NpasError("the digits task needs scikit-learn: pip install scikit-learn") from None
    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.from_numpy(d.target.astype(np.int64))
    tr, va = _stratified(d.target, val_fraction, seed)
    xt = x[tr]
    return Split(
        TensorDataset(_standardise(xt, xt), y[tr]),
        TensorDataset(_standardise(x[va], xt), y[va]),
        tuple(x.shape[1:]),
        [str(i) for i in range(10)],
    )


def _read_image(path: Path) -> np.ndarray:
    """An image as float32 [H, W, C] in 0..1 (.npy arrays: [H, W] or [H, W, C], uint8 scaled)."""
    if path.suffix.lower() == ARRAY_SUFFIX:
        arr = np.load(path, allow_pickle=False)
    else:
        try:
            from PIL import Image
        except ImportError:
            raise NpasError(
                f"{path}: reading {path.suffix} images needs Pillow (pip install pillow), or "
                "store the images as .npy arrays [H, W] or [H, W, C]"
            ) from None
        with Image.open(path) as im:
            arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise NpasError(f"{path}: an image must be [H, W] or [H, W, C], got {list(arr.shape)}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return arr.astype(np.float32)


def _read_folder(root: Path, classes: list[str] | None, size: int | None) -> tuple:
    if not root.is_dir():
        raise NpasError(f"--data {root}: no such directory; expected one folder per class")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = classes or found
    if not classes:
        raise NpasError(f"--data {root}: no class folders; expected {root}/<class>/<image files>")
    xs: list[torch.Tensor] = []
    ys: list[int] = []
    suffixes = (*IMAGE_SUFFIXES, ARRAY_SUFFIX)
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).glob("*") if p.suffix.lower() in suffixes)
        if not files:
            raise NpasError(
                f"--data {root}: class folder {name!r} holds no image ({', '.join(suffixes)})"
            )
        for f in files:
            img = torch.from_numpy(np.ascontiguousarray(_read_image(f).transpose(2, 0, 1)))
            if size is not None and tuple(img.shape[1:]) != (size, size):
                img = F.interpolate(img[None], size=(size, size), mode="bilinear",
                                    align_corners=False)[0]  # fmt: skip
            if xs and img.shape != xs[0].shape:
                raise NpasError(
                    f"{f}: image shape {list(img.shape)} (C, H, W) differs from the first "
                    f"image's {list(xs[0].shape)}; pass --image-size to resize them all"
                )
            xs.append(img)
            ys.append(label)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64), classes


def image_folder(
    root: str | Path, seed: int = 0, size: int | None = None, val_fraction: float = 0.2
) -> Split:
    """Images in ROOT/<class>/ (PNG/JPEG through Pillow, or .npy arrays). With ROOT/train and
    ROOT/val (or ROOT/test) sub-folders those are the split; otherwise each class is split with
    `seed`. `size` resizes every image to size x size. Inputs are standardised with the
    training images' statistics."""
    root = Path(root)
    held = next((root / n for n in ("val", "test") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and held is not None:
        xt, yt, classes = _read_folder(root / "train", None, size)
        xv, yv, _ = _read_folder(held, classes, size)
    else:
        x, y, classes = _read_folder(root, None, size)
        tr, va = _stratified(y.numpy(), val_fraction, seed)
        if len(va) == 0 or len(tr) == 0:
            raise NpasError(f"--data {root}: too few images to split off a validation set")
        xt, yt, xv, yv = x[tr], y[tr], x[va], y[va]
    return Split(
        TensorDataset(_standardise(xt, xt), yt),
        TensorDataset(_standardise(xv, xt), yv),
        tuple(xt.shape[1:]),
        classes,
    )


def loader(data: Dataset | DataLoader, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """A DataLoader for `data` (returned as is when it already is one); shuffling follows its
    own seeded generator."""
    if isinstance(data, DataLoader):
        return data
    gen = torch.Generator().manual_seed(seed)
    # drop_last in training: a last batch of a few images gives batch norm noisy statistics
    return DataLoader(
        data, batch_size=batch_size, shuffle=shuffle, generator=gen, drop_last=shuffle
    )
