"""User-facing errors. The CLI prints their message (what, where, what to do) and exits 2."""

from __future__ import annotations


class NpasError(Exception):
    """Base class of errors caused by the user's input or environment, not by an npas bug."""


class ModelError(NpasError):
    """The model file is unreadable, malformed, or uses something npas cannot compile."""


class UnsupportedOpError(ModelError):
    def __init__(self, op: str, node: str, opset: int, detail: str = "") -> None:
        self.op, self.node, self.opset = op, node, opset
        msg = f"unsupported operator {op!r} (opset {opset}) at node {node!r}"
        if detail:
            msg += f": {detail}"
        else:
            msg += "; npas cannot compile it (npas.frontend.supported_ops() lists what it can)"
        super().__init__(msg)


class ShapeError(NpasError):
    """A dynamic dimension could not be resolved, or an input has the wrong shape or dtype."""


class ToolchainError(NpasError):
    """A compiler, build tool or device runner is missing or failed."""
