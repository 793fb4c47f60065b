"""The fused input stage (noise management + DAC) gives the PyTorch path's numbers exactly."""

from __future__ import annotations

import itertools

import pytest
import torch

from analogkit.config import IOConfig
from analogkit.periphery.converters import noise_management_scale
from analogkit.periphery.input_stage import fused_input_stage
from analogkit.periphery.kernels import HAVE_NUMBA
from analogkit.periphery.mvm import _dac

pytestmark = pytest.mark.skipif(not HAVE_NUMBA, reason="numba missing")


def _inputs(dtype: torch.dtype) -> torch.Tensor:
    x = 0.7 * torch.randn(24, 40, generator=torch.Generator().manual_seed(2), dtype=dtype)
    x[3] = 0.0  # a zero row: α = 1
    x[5, 7] = float("nan")  # a NaN row: α = 1, the NaN stays
    x[6] = -x[6].abs()  # all negative: for "max", α = 1
    x[7, :3] = torch.tensor([5.0, -5.0, 2.5])  # clipped at the DAC's bound
    x[8] = 1.5 / 126 * torch.arange(40, dtype=dtype)  # halves of a step: round half to even
    return x


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("nm", ["none", "abs_max", "max"])
def test_fused_input_stage_equals_the_pytorch_path(nm, dtype, monkeypatch):
    monkeypatch.setenv("ANALOGKIT_KERNELS", "numba")  # (the periphery's conftest also runs the torch back-end)
    x = _inputs(dtype)
    for res, thres, bound in itertools.product([1 / 126, 0.0, 0.03], [0.0, 0.5], [1.0, 0.8]):
        io = IOConfig(noise_management=nm, inp_res=res, nm_thres=thres, inp_bound=bound)
        u, alpha = fused_input_stage(x, io)
        ref_alpha = noise_management_scale(x, io)
        ref_u = _dac(x, ref_alpha, io, None)
        assert u.dtype == dtype
        # bit for bit, NaN where the PyTorch path has NaN
        assert torch.equal(u.isnan(), ref_u.isnan())
        assert torch.equal(u.nan_to_num(), ref_u.nan_to_num()), (nm, res, thres, bound)
        assert (alpha is None) == (ref_alpha is None)
        if alpha is not None:
            assert torch.equal(alpha, ref_alpha)
    if nm != "none":  # the cases above were met: a clipped input, a zero row with α = 1
        assert float(u[7].abs().max()) == float(torch.tensor(0.8, dtype=dtype)) and float(alpha[3]) == 1.0


@pytest.mark.parametrize("change", [dict(inp_sto_round=True), dict(inp_noise=0.01), dict(noise_management="constant",
                                                                                          nm_thres=1.0)])
def test_fused_input_stage_leaves_random_and_other_cases_to_pytorch(change, monkeypatch):
    monkeypatch.setenv("ANALOGKIT_KERNELS", "numba")
    assert fused_input_stage(_inputs(torch.float32), IOConfig(**change)) is None


def test_fused_input_stage_is_off_with_the_torch_switch(monkeypatch):
    monkeypatch.setenv("ANALOGKIT_KERNELS", "torch")
    assert fused_input_stage(_inputs(torch.float32), IOConfig()) is None


def test_fused_input_stage_takes_rows_of_any_leading_shape(monkeypatch):
    """The tile grid's (G, C, N, ci) inputs, strided, each row its own vector; its input noise is
    drawn per tile later (noise=False), so the stage applies with inp_noise > 0 too."""
    monkeypatch.setenv("ANALOGKIT_KERNELS", "numba")
    x = _inputs(torch.float32).reshape(2, 3, 4, 40).permute(1, 0, 2, 3)  # (3, 2, 4, 40), not contiguous
    io = IOConfig(noise_management="abs_max", inp_res=1 / 126, inp_noise=0.05)
    assert fused_input_stage(x, io) is None  # (with its noise the PyTorch path draws)
    u, alpha = fused_input_stage(x, io, noise=False)
    ref_alpha = noise_management_scale(x, io)
    ref_u = _dac(x, ref_alpha, io, None, noise=False)
    assert u.shape == x.shape and alpha.shape == (3, 2, 4, 1)
    assert torch.equal(u.nan_to_num(), ref_u.nan_to_num()) and torch.equal(u.isnan(), ref_u.isnan())
    assert torch.equal(alpha, ref_alpha)
