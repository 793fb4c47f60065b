"""Run every periphery test on both back-ends of the output stage: the fused numba kernel and PyTorch."""

import pytest

from analogkit.periphery import kernels

BACKENDS = ["numba", "torch"] if kernels.HAVE_NUMBA else ["torch"]


@pytest.fixture(autouse=True, params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("ANALOGKIT_KERNELS", request.param)
    return request.param
