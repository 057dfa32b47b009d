"""The training loop shared by dense training and every pruning method, with per-epoch
checkpoints that let an interrupted run resume and finish exactly as an uninterrupted one.

A checkpoint holds everything the next epoch reads: the model, the optimizer (momentum), the
masks, the method's state (RGL penalty weights, ADMM Z, U and rho), the RNG states (torch,
numpy, python, CUDA, and the data loader's generator), the epoch and the history. It is written
to a temp file and renamed, so a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import math
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from npas.errors import NpasError

from .algorithms import Method
from .masks import Masks

CHECKPOINT_VERSION = 1


@dataclass
class Schedule:
    """Epochs 0..reg_epochs-1 run the method's first phase; the masks are fixed at reg_epochs
    and the rest is masked retraining. The learning rate follows a cosine within each phase."""

    epochs: int
    reg_epochs: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def lr_at(self, epoch: int) -> float:
        start, n = (0, self.reg_epochs) if epoch < self.reg_epochs else (
            self.reg_epochs, self.epochs - self.reg_epochs)  # fmt: skip
        if epoch < self.reg_epochs:
            return self.lr  # the regulariser needs a steady pull, not an annealed one
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * (epoch - start + 0.5) / max(n, 1)))


@dataclass
class EpochLog:
    epoch: int
    phase: str  # "dense", "regularise" or "masked"
    lr: float
    loss: float
    penalty: float
    val_accuracy: float


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    history: list[EpochLog] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def pick_device(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@torch.no_grad()
def accuracy(model: torch.nn.Module, data: DataLoader, device: torch.device) -> float:
    """Top-1 accuracy in eval mode (the training mode is restored afterwards)."""
    was = model.training
    model.eval()
    right = total = 0
    try:
        for x, y in data:
            out = model(x.to(device))
            right += int((out.argmax(dim=1).cpu() == y).sum())
            total += int(y.numel())
    finally:
        model.train(was)
    if total == 0:
        raise NpasError("the validation data is empty")
    return right / total


def _rng_state(gen: torch.Generator | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "loader": gen.get_state() if gen is not None else None,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], gen: torch.Generator | None) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if gen is not None and state.get("loader") is not None:
        gen.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class Trainer:
    """Runs `schedule` on `model`; `method` and `masks` are None for dense training."""

    def __init__(
        self,
        model: torch.nn.Module,
        train: DataLoader,
        val: DataLoader,
        schedule: Schedule,
        device: torch.device,
        method: Method | None = None,
        masks: Masks | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        fingerprint: dict[str, Any] | None = None,
        progress: bool = True,
        stop_after: int | None = None,
    ) -> None:
        self.model, self.train_data, self.val_data = model, train, val
        self.schedule, self.device = schedule, device
        self.method, self.masks = method, masks
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.fingerprint = fingerprint or {}
        self.progress = progress
        self.stop_after = stop_after  # tests: end the run after this many epochs, as a kill would
        self.optimizer = torch.optim.SGD(
            model.parameters(),
            lr=schedule.lr,
            momentum=schedule.momentum,
            nesterov=schedule.momentum > 0,
            weight_decay=schedule.weight_decay,
        )
        self.state = TrainState()
        gen = getattr(train, "generator", None)
        self.loader_gen: torch.Generator | None = gen if isinstance(gen, torch.Generator) else None

    # ---- checkpoints ----
    def save(self) -> None:
        if self.checkpoint is None:
            return
        save_atomic(
            {
                "version": CHECKPOINT_VERSION,
                "fingerprint": self.fingerprint,
                "epoch": self.state.epoch,
                "history": [vars(h) for h in self.state.history],
                "extra": self.state.extra,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "masks": self.masks.state_dict() if self.masks is not None else None,
                "method": self.method.state_dict() if self.method is not None else None,
                "rng": _rng_state(self.loader_gen),
            },
            self.checkpoint,
        )

    def resume(self) -> bool:
        """Load the checkpoint if there is one; False when there is none."""
        if self.checkpoint is None or not self.checkpoint.is_file():
            return False
        try:
            ck = torch.load(self.checkpoint, map_location=self.device, weights_only=False)
        except Exception as e:  # a foreign or damaged file: say which and what to do
            raise NpasError(
                f"checkpoint {self.checkpoint} cannot be read ({type(e).__name__}: {e}); "
                "delete it to start over"
            ) from None
        if ck.get("version") != CHECKPOINT_VERSION or ck.get("fingerprint") != self.fingerprint:
            diff = sorted(
                k for k in set(self.fingerprint) | set(ck.get("fingerprint", {}))
                if ck.get("fingerprint", {}).get(k) != self.fingerprint.get(k)
            )  # fmt: skip
            raise NpasError(
                f"checkpoint {self.checkpoint} belongs to another run (differs in: "
                f"{', '.join(diff) or 'version'}); use the same settings or delete it"
            )
        self.model.load_state_dict(ck["model"])
        if self.masks is not None and ck["masks"]:
            self.masks.load_state_dict(ck["masks"])
        if self.method is not None and ck["method"] is not None:
            self.method.load_state_dict(ck["method"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.state = TrainState(ck["epoch"], [EpochLog(**h) for h in ck["history"]], ck["extra"])
        _set_rng_state(ck["rng"], self.loader_gen)
        return True

    # ---- the loop ----
    def run(self, on_epoch: Callable[[EpochLog], None] | None = None) -> TrainState:
        s = self.schedule
        while self.state.epoch < s.epochs:
            e = self.state.epoch
            regularise = self.method is not None and e < s.reg_epochs
            if self.masks is not None and not regularise and not self.masks.fixed:
                self.masks.project()
                # the masked phase starts from the projection: no momentum from before it
                self.optimizer.state.clear()
            if regularise:
                assert self.method is not None
                self.method.epoch_start(e)
            log = self._epoch(e, regularise)
            if regularise:
                assert self.method is not None
                self.method.epoch_end(e)
            log.val_accuracy = accuracy(self.model, self.val_data, self.device)
            self.state.history.append(log)
            self.state.epoch = e + 1
            self.save()
            if on_epoch is not None:
                on_epoch(log)
            if self.stop_after is not None and self.state.epoch >= self.stop_after:
                break
        if self.masks is not None and self.state.epoch >= s.epochs and not self.masks.fixed:
            self.masks.project()  # zero training epochs: the projection is the result
        return self.state

    def _epoch(self, e: int, regularise: bool) -> EpochLog:
        lr = self.schedule.lr_at(e)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        phase = "dense" if self.masks is None else ("regularise" if regularise else "masked")
        masked = self.masks is not None and self.masks.fixed and not regularise
        self.model.train()
        total = pen_total = 0.0
        batches = 0
        bar = tqdm(
            self.train_data,
            desc=f"epoch {e + 1}/{self.schedule.epochs} {phase}",
            disable=not self.progress,
            leave=False,
            unit="batch",
        )
        for x, y in bar:
            x, y = x.to(self.device), y.to(self.device)
            loss = F.cross_entropy(self.model(x), y)
            pen = self.method.penalty() if regularise and self.method is not None else None
            full = loss if pen is None else loss + pen
            self.optimizer.zero_grad(set_to_none=True)
            full.backward()
            if masked:
                assert self.masks is not None
                self.masks.mask_grads()
            self.optimizer.step()
            if masked:
                assert self.masks is not None
                self.masks.after_step(self.optimizer)
            total += float(loss.detach())
            pen_total += float(pen.detach()) if pen is not None else 0.0
            batches += 1
            bar.set_postfix(loss=f"{total / batches:.3f}")
        bar.close()
        n = max(batches, 1)
        return EpochLog(e, phase, lr, total / n, pen_total / n, float("nan"))
