"""The buffer step of buffered transfers: the CPU kernel and the PyTorch path follow the same rule."""

from __future__ import annotations

import pytest
import torch

from analogkit.compounds.buffer_step import buffer_step_
from analogkit.periphery.kernels import HAVE_NUMBA

RULES = [
    dict(no_buffer=False, forget=True, momentum=0.0, cap=0.0),
    dict(no_buffer=False, forget=True, momentum=0.3, cap=0.0),
    dict(no_buffer=True, forget=True, momentum=0.0, cap=0.0),
    dict(no_buffer=False, forget=False, momentum=0.1, cap=0.0),
    dict(no_buffer=False, forget=False, momentum=0.0, cap=1.5),
]


def _expected(h: torch.Tensor, u: torch.Tensor, scale: float, max_steps: float, no_buffer: bool, forget: bool,
              momentum: float, cap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The rule of the module docstring, element by element in float64."""
    v = (torch.zeros_like(h, dtype=torch.float64) if no_buffer else h.double()) + scale * u.double()
    n = v.clamp(-max_steps, max_steps).trunc()
    if forget:
        v = torch.where(n != 0, v * momentum, v)
    else:
        v = v - (1.0 - momentum) * n
        if cap > 0:
            v = v.clamp(-cap, cap)
    return v, n.to(torch.int32)


def _buffer_and_view(layout: str, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A 40×30 buffer and a (40, 7) selection of it: a column slice, a copy, or rows seen transposed."""
    buf = 2.5 * torch.randn(40, 30, generator=gen)
    if layout == "columns":
        return buf, buf.narrow(1, 11, 7)
    if layout == "copy":
        return buf, buf[:, [3, 9, 4, 20, 0, 29, 15]]
    big = 2.5 * torch.randn(30, 40, generator=gen)
    return big, big.narrow(0, 5, 7).t()


@pytest.mark.parametrize("kernels", ["numba", "torch"])
@pytest.mark.parametrize("layout", ["columns", "copy", "rows"])
@pytest.mark.parametrize("rule", RULES)
def test_buffer_step_follows_the_rule(kernels, layout, rule, monkeypatch):
    if kernels == "numba" and not HAVE_NUMBA:
        pytest.skip("numba missing")
    monkeypatch.setenv("ANALOGKIT_KERNELS", kernels)
    gen = torch.Generator().manual_seed(3)
    owner, h = _buffer_and_view(layout, gen)
    u = torch.randn(40, 7, generator=gen)
    before = h.clone()
    want_h, want_n = _expected(before, u, 0.9, 2.0, **rule)
    assert int((want_n != 0).sum()) > 20 and int((want_n.abs() == 2).sum()) > 5  # counts of 1 and 2, clipped ones
    new_h, counts, moved = buffer_step_(h, u, 0.9, 2.0, **rule)
    assert moved
    assert torch.equal(counts, want_n)
    # float32 storage: one rounding of the float64 result (the PyTorch path rounds each operation)
    torch.testing.assert_close(new_h.double(), want_h, rtol=0, atol=4e-6 * float(want_h.abs().max()))
    in_place = layout != "rows" if kernels == "numba" else (rule["forget"] and rule["momentum"] == 0)
    if in_place:  # the selection itself (for a column slice: the buffer) holds the new values
        assert new_h.data_ptr() == h.data_ptr()
        if layout == "columns":
            assert torch.equal(owner.narrow(1, 11, 7), new_h)


def test_buffer_step_reports_no_move_below_one_pulse():
    h = torch.full((8, 3), 0.2)
    new_h, counts, moved = buffer_step_(h, torch.full((8, 3), 0.5), 1.0, 1.0, no_buffer=False, forget=True,
                                        momentum=0.0, cap=0.0)
    assert not moved and int(counts.abs().sum()) == 0
    torch.testing.assert_close(new_h, torch.full((8, 3), 0.7))
