"""Every OpenCL test needs a device: without one (no ICD loader, no PoCL) each test fails with
cl_harness's message saying what to install."""

from __future__ import annotations

import pytest
from opencl_support import CL


@pytest.fixture(scope="session", autouse=True)
def opencl_device() -> str:
    try:
        return CL.device_name()
    except CL.ClError as e:
        pytest.fail(str(e))
