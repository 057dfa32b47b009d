"""A run stopped after any epoch resumes from its checkpoint and ends exactly where the
uninterrupted run ends: same weights, masks, optimizer state and report. The checkpoint
carries each method's own state (RGL penalty weights, ADMM Z, U and rho)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import CONV1X1, CONV3X3, data, dense_model, threads

import npas.train as T
from npas.errors import NpasError

CONFIG = {
    **{name: ("pattern", 6.0) for name in CONV3X3},
    CONV1X1[1]: ("block", 2.0),
    CONV1X1[0]: ("filter", 2.0),
}
EPOCHS = 4


def run(method: str, ckpt: Path, **kw) -> tuple[torch.nn.Module, T.PruneReport]:
    threads()
    s = data()
    return T.prune(dense_model(), CONFIG, s.train, s.val, method=method, epochs=EPOCHS,
                   finetune_epochs=2, checkpoint=ckpt, progress=False, **kw)  # fmt: skip


def assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("method,stop", [("rgl", 1), ("admm", 2), ("oneshot", 3)])
def test_resume_ends_where_an_uninterrupted_run_ends(
    method: str, stop: int, tmp_path: Path
) -> None:
    full, full_report = run(method, tmp_path / "full.ckpt")
    ckpt = tmp_path / "cut.ckpt"
    # the run ends after `stop` epochs, as a run killed after writing that checkpoint would
    _, cut_report = run(method, ckpt, stop_after=stop)
    assert len(cut_report.history) == stop and ckpt.is_file()
    saved = torch.load(ckpt, weights_only=False)
    assert saved["epoch"] == stop
    if method == "admm":
        assert saved["method"]["z"] and saved["method"]["rho"] > 0
    if method == "rgl":
        assert saved["method"]["alphas"]
    # a fresh process would start from a fresh module: the checkpoint supplies the rest
    resumed, report = run(method, ckpt, resume=True)
    assert_same(full, resumed)
    assert [vars(h) for h in report.history] == [vars(h) for h in full_report.history]
    assert report.accuracy_before == full_report.accuracy_before
    assert report.accuracy_after == full_report.accuracy_after
    assert [(r.name, r.kept) for r in report.layers] == [
        (r.name, r.kept) for r in full_report.layers
    ]


def test_an_interrupted_run_differs_from_a_restart_without_its_state(tmp_path: Path) -> None:
    """The control: resuming matters. Continuing from the cut weights with fresh optimizer,
    RNG and method state does not give the uninterrupted result."""
    full, _ = run("admm", tmp_path / "full.ckpt")
    ckpt = tmp_path / "cut.ckpt"
    cut, _ = run("admm", ckpt, stop_after=2)
    threads()
    s = data()
    restarted, _ = T.prune(cut, CONFIG, s.train, s.val, method="admm", epochs=2,
                           finetune_epochs=2, progress=False)  # fmt: skip
    diff = max(
        float((a - b).abs().max())
        for a, b in zip(full.state_dict().values(), restarted.state_dict().values(), strict=True)
        if a.dtype.is_floating_point
    )
    assert diff > 1e-4


def test_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    ckpt = tmp_path / "c.ckpt"
    run("rgl", ckpt, stop_after=1)
    with pytest.raises(NpasError, match=r"another run.*method"):
        run("admm", ckpt, resume=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(NpasError, match="cannot be read"):
        run("rgl", ckpt, resume=True)


def test_checkpoints_are_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while writing leaves the previous checkpoint whole and no temp file."""
    ckpt = tmp_path / "c.ckpt"
    run("oneshot", ckpt, stop_after=1)
    before = ckpt.read_bytes()
    import npas.train.trainer as trainer

    real_save = torch.save

    def broken(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        raise OSError("disk full")

    monkeypatch.setattr(trainer.torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        run("oneshot", ckpt, resume=True)
    assert ckpt.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]
