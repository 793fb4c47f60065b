"""On-chip (pulsed) training: autograd hands (x, d) to the tile; the optimizer turns them into pulses.

The weight of a pulsed tile is device state (buffers), never a gradient-carrying parameter. Its
forward reads the devices through the forward periphery; its backward reads them transposed through
the backward periphery (the gradient for the layer below) and records the pair (x, d) — the
inputs and the output gradients, exactly what the crossbar's stochastic pulse update consumes
(Gokmen & Vlasov 2016). :class:`~analogkit.optim.AnalogSGD` applies the recorded updates in
``step()`` with the learning rate of the parameter group that holds the tile's ``update_handle``
(a zero-element parameter that only connects the tile to optimizers and schedulers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from analogkit.config.io import IOConfig
from analogkit.periphery.mvm import TileGrid, analog_mvm

if TYPE_CHECKING:  # pragma: no cover
    from analogkit.tile.tile import AnalogTile


class PulsedMVMFunction(torch.autograd.Function):
    """Forward: y = W x through the forward periphery. Backward: d → Wᵀ d through the backward
    periphery, and (x, d) recorded on the tile for the pulsed update. No gradient for W."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x: Tensor, handle: Tensor, w: Tensor, grid: TileGrid, io_fwd: IOConfig, io_bwd: IOConfig,
        gen: torch.Generator, tile: "AnalogTile",
    ) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.grid, ctx.io_bwd, ctx.gen, ctx.tile = grid, io_bwd, gen, tile
        with torch.no_grad():
            return analog_mvm(x, w, grid, io_fwd, gen)

    @staticmethod
    def backward(ctx, grad_y: Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        ctx.tile.record_update(x, grad_y)
        grad_x = None
        if ctx.needs_input_grad[0]:
            with torch.no_grad():
                grad_x = analog_mvm(grad_y, w.transpose(1, 2), ctx.grid.transposed(), ctx.io_bwd, ctx.gen)
        grad_handle = torch.zeros(0, device=grad_y.device, dtype=grad_y.dtype)
        return grad_x, grad_handle, None, None, None, None, None, None
