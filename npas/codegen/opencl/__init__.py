"""OpenCL C kernel families (one module each, manifests named as in npas/codegen/host/)."""

from npas.codegen.opencl import conv, datamove, elementwise, pool, reduce

__all__ = ["conv", "datamove", "elementwise", "pool", "reduce"]
