"""The analog matrix-vector product of a grid of tiles, with the read periphery's non-idealities.

A logical weight of shape (G, out, in) (G independent groups, G = 1 for a linear layer) is cut into
a grid of ``R × C`` physical tiles per group, each ``co × ci`` (near-equal chunks of at most the
configured tile size; the last chunk is zero-padded). All tiles are computed in one batched matmul;
every tile has its own DAC/ADC, noise management and bound management; the ``C`` partial outputs
of a row of tiles are summed digitally.

Pipeline per tile (Gokmen & Vlasov 2016; Rasch et al. 2021, "A flexible and fast PyTorch toolkit
for simulating training and inference on analog crossbar arrays", Sec. 2.2)::

    α  = NM(x)                               s = 1 → 2 → 4 …  while the ADC saturates (bound management)
    x' = clip(Q_DAC(x/(α s)), ±b_in) + σ_in ξ
    y' = W x' + σ_w-term ξ
    y' = clip(Q_ADC(y' + σ_out ξ), ±b_out)
    y  = Σ_tiles y' α s · out_scale
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from analogkit.config.io import IOConfig, resolution_step
from analogkit.periphery import kernels
from analogkit.periphery.converters import noise_management_scale, quantize_
from analogkit.periphery.input_stage import fused_input_stage


@dataclass(frozen=True)
class TileGrid:
    """How one group's (out × in) matrix is cut into tiles: ``rows × cols`` tiles of ``co × ci``."""

    out_size: int
    in_size: int
    rows: int
    cols: int
    co: int
    ci: int

    @classmethod
    def for_matrix(cls, out_size: int, in_size: int, max_out: int, max_in: int) -> "TileGrid":
        rows = 1 if max_out <= 0 else max(1, math.ceil(out_size / max_out))
        cols = 1 if max_in <= 0 else max(1, math.ceil(in_size / max_in))
        return cls(out_size, in_size, rows, cols, math.ceil(out_size / rows), math.ceil(in_size / cols))

    @property
    def n_tiles(self) -> int:
        return self.rows * self.cols

    def transposed(self) -> "TileGrid":
        """The same physical tiles read in the transposed direction (backward pass)."""
        return TileGrid(self.in_size, self.out_size, self.cols, self.rows, self.ci, self.co)

    def split_weight(self, w: Tensor) -> Tensor:
        """(G, out, in) → (G, C, R, ci, co): the tile blocks, transposed for ``x @ block``."""
        g = w.shape[0]
        pad_out, pad_in = self.rows * self.co - self.out_size, self.cols * self.ci - self.in_size
        if pad_out or pad_in:
            w = torch.nn.functional.pad(w, (0, pad_in, 0, pad_out))
        return w.reshape(g, self.rows, self.co, self.cols, self.ci).permute(0, 3, 1, 4, 2)


def analog_mvm(x: Tensor, w: Tensor, grid: TileGrid, io: IOConfig, generator: torch.Generator | None) -> Tensor:
    """y = W x through the periphery of every tile. ``x``: (N, G, in), ``w``: (G, out, in) → (N, G, out).

    No autograd here: :class:`AnalogMVMFunction` wraps it with straight-through gradients.
    """
    n, g = x.shape[0], x.shape[1]
    if io.ideal:
        return torch.matmul(x.transpose(0, 1), w.transpose(1, 2)).transpose(0, 1)
    if grid.n_tiles == 1 and g == 1:
        y = _single_tile(x[:, 0], w[0], io, generator)
        return y.unsqueeze(1)
    # (N, G, in) → (G, C, N, ci)
    pad_in = grid.cols * grid.ci - grid.in_size
    if pad_in:
        x = torch.nn.functional.pad(x, (0, pad_in))
    xg = x.reshape(n, g, grid.cols, grid.ci).permute(1, 2, 0, 3)
    blocks = grid.split_weight(w)  # (G, C, R, ci, co)
    y = _tile_grid(xg, blocks, io, generator)  # (G, C, N, R, co)
    y = y.sum(dim=1).reshape(g, n, grid.rows * grid.co)[..., : grid.out_size]
    return y.transpose(0, 1)


def output_stage_(y: Tensor, row_scale: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """In place on ``y`` (..., cols), rows = leading dims: ``y ← clip(Q_ADC(y + σ_out ξ), ±b_out) · row_scale``.

    Returns a bool tensor of the leading shape: True where the ADC saturated in that row (the
    signal for bound management). Uses the fused CPU kernel where it applies, else PyTorch ops.
    """
    lead = y.shape[:-1]
    row_scale = row_scale.expand(lead) if row_scale.shape != lead else row_scale
    if kernels.kernels_enabled(y) and y.is_contiguous():
        sat = kernels.output_stage_(y, row_scale, io.out_noise, io.out_step, io.out_bound, io.out_sto_round, gen)
        return sat.view(lead)
    if io.out_noise > 0:
        y.add_(torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype), alpha=io.out_noise)
    quantize_(y, io.out_step, io.out_bound, io.out_sto_round, gen)
    sat = y.abs().amax(dim=-1) >= io.out_bound
    y.mul_(row_scale.unsqueeze(-1))
    return sat


def _input_stage(x: Tensor, io: IOConfig, gen: torch.Generator | None,
                 noise: bool = True) -> tuple[Tensor, Tensor | None]:
    """(u, α): noise management over the last dimension, then the DAC (:func:`_dac`). On the CPU
    in one fused pass where it applies (:mod:`analogkit.periphery.input_stage`, the same numbers)."""
    fused = fused_input_stage(x, io, noise)
    if fused is not None:
        return fused
    alpha = noise_management_scale(x, io)
    return _dac(x, alpha, io, gen, noise), alpha


def _dac(x: Tensor, denom: Tensor | None, io: IOConfig, gen: torch.Generator | None, noise: bool = True) -> Tensor:
    """Input stage: x / (α s), quantised and clipped by the DAC, plus input noise if ``noise``. New tensor."""
    u = x / denom if denom is not None else x.clone()
    quantize_(u, io.inp_step, io.inp_bound, io.inp_sto_round, gen)
    if noise and io.inp_noise > 0:
        u.add_(torch.randn(u.shape, generator=gen, device=u.device, dtype=u.dtype), alpha=io.inp_noise)
    return u


def _product(u: Tensor, wt: Tensor) -> Tensor:
    """u @ wt for u (N, in). For a square diagonal u (the one-hot reads of a transfer or refresh,
    :func:`analogkit.compounds.base.read_columns`: k unit inputs, one per column) the product is
    row k of wt times u_kk, exactly (every other term is a zero): N·out instead of N·in·out
    multiplications. The test is cheap where it fails: a first row with two nonzeros ends it."""
    n = u.shape[0]
    if u.dim() == 2 and n == u.shape[1] and n >= 32 and int(torch.count_nonzero(u[0])) <= 1:
        diag = u.diagonal()
        if int(torch.count_nonzero(u)) == int(torch.count_nonzero(diag)):
            # one pass into a contiguous result (wt is often a transposed view)
            return torch.mul(diag.unsqueeze(-1), wt, out=wt.new_empty(wt.shape))
    return u @ wt


def _single_tile(x: Tensor, w: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """Fast path for one tile: x (N, in), w (out, in) → (N, out)."""
    u, alpha = _input_stage(x, io, gen)  # alpha: (N, 1) or None
    y = _product(u, w.t())
    _weight_noise_(y, u, w.t(), io, gen)
    scale = alpha.squeeze(-1) if alpha is not None else y.new_ones(y.shape[0])
    sat = output_stage_(y, scale, io, gen)
    if io.bound_management == "iterative":
        s = torch.ones_like(scale)
        for _ in range(_bm_scales_allowed(io)):
            if not bool(sat.any()):
                break
            # re-read the saturated rows with the input halved again (Gokmen et al. 2017, Sec. 3)
            idx = sat.nonzero().squeeze(1)
            s[idx] *= 2
            row_scale = s[idx] if alpha is None else alpha[idx, 0] * s[idx]
            u = _dac(x[idx], row_scale.unsqueeze(-1), io, gen)
            y_sub = _product(u, w.t())
            _weight_noise_(y_sub, u, w.t(), io, gen)
            sat_sub = output_stage_(y_sub, row_scale, io, gen)
            y[idx] = y_sub
            sat = torch.zeros_like(sat)
            sat[idx] = sat_sub
    if io.out_scale != 1.0:
        y.mul_(io.out_scale)
    return y


def _weight_noise_(y: Tensor, u: Tensor, wt: Tensor, io: IOConfig, gen: torch.Generator | None) -> None:
    """Output-referred short-term weight read noise, in place, for y = u @ wt.

    additive_constant: y_i += σ_w ‖x‖₂ ξ_i  (i.i.d. weight noise of std σ_w on every cross-point);
    pcm_read:          y_i += σ_w √(Σ_j |w_ij| x_j²) ξ_i  (conductance-proportional read noise);
    (Rasch et al. 2023, Nat. Commun. 14:5282, Methods "Weight noise").
    """
    if io.w_noise <= 0:
        return
    if io.w_noise_type == "additive_constant":
        scale = u.norm(dim=-1, keepdim=True).expand_as(y)
    else:  # pcm_read
        scale = _product(u.square(), wt.abs()).sqrt_() if u.dim() == 2 else torch.matmul(u.square(), wt.abs()).sqrt_()
    noise = torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype)
    y.addcmul_(noise, scale, value=io.w_noise)


def _bm_scales_allowed(io: IOConfig) -> int:
    """Number of halvings of the input that bound management may try (limits ``max_bm_factor`` and ``max_bm_res``)."""
    step = resolution_step(io.inp_res)
    k = 0
    while 2 ** (k + 1) <= io.max_bm_factor and (step == 0 or step * 2 ** (k + 1) <= io.max_bm_res):
        k += 1
    return k


def _tile_grid(xg: Tensor, blocks: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """All tiles at once. xg: (G, C, N, ci); blocks: (G, C, R, ci, co) → y: (G, C, N, R, co), rescaled."""
    gdim, cdim, n, _ = xg.shape
    r = blocks.shape[2]
    u, alpha = _input_stage(xg, io, gen, noise=False)  # alpha: (G, C, N, 1); input noise per tile in _grid_product
    y = _grid_product(u.unsqueeze(3), blocks, io, gen)  # (G, C, N, R, co)
    scale = alpha.expand(gdim, cdim, n, r) if alpha is not None else y.new_ones(gdim, cdim, n, r)
    sat = output_stage_(y, scale.contiguous(), io, gen)  # (G, C, N, R)
    if io.bound_management == "iterative":
        s = torch.ones(gdim, cdim, n, r, device=y.device, dtype=y.dtype)
        for _ in range(_bm_scales_allowed(io)):
            if not bool(sat.any()):
                break
            # each saturated tile re-reads its input vector halved again; other tiles keep their result
            s = torch.where(sat, s * 2, s)
            rows = sat.any(dim=3).any(dim=1).any(dim=0).nonzero().squeeze(1)
            row_scale = s[:, :, rows] if alpha is None else s[:, :, rows] * alpha[:, :, rows]  # (G, C, K, R)
            u_sub = _dac(xg[:, :, rows].unsqueeze(3), row_scale.unsqueeze(-1), io, gen)  # (G, C, K, R, ci)
            y_sub = _grid_product(u_sub, blocks, io, gen)
            sat_sub = output_stage_(y_sub, row_scale.contiguous(), io, gen)
            redo = sat[:, :, rows]
            y[:, :, rows] = torch.where(redo.unsqueeze(-1), y_sub, y[:, :, rows])
            sat = torch.zeros_like(sat)
            sat[:, :, rows] = sat_sub & redo
    if io.out_scale != 1.0:
        y.mul_(io.out_scale)
    return y


def _grid_product(u: Tensor, blocks: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """Crossbar products with weight noise. u: (G, C, K, R|1, ci) (one input per tile or shared by
    the R tiles of a column); blocks (G, C, R, ci, co) → contiguous (G, C, K, R, co)."""
    gdim, cdim, k, ru, ci = u.shape
    r, co = blocks.shape[2], blocks.shape[4]
    if ru == 1 and io.inp_noise == 0:
        wcat = blocks.permute(0, 1, 3, 2, 4).reshape(gdim, cdim, ci, r * co)
        y = torch.matmul(u.squeeze(3), wcat).view(gdim, cdim, k, r, co)
    else:
        if ru == 1:  # every tile's DAC adds its own input noise: the input differs per tile row
            u = u.expand(gdim, cdim, k, r, ci)
            u = u + io.inp_noise * torch.randn(u.shape, generator=gen, device=u.device, dtype=u.dtype)
        y = torch.matmul(u.transpose(2, 3), blocks).transpose(2, 3).contiguous()
    if io.w_noise > 0:
        if io.w_noise_type == "additive_constant":
            scale = u.norm(dim=-1, keepdim=True).expand_as(y)
        else:  # pcm_read: Σ_j |w_ij| u_j² per tile
            usq = u.square().expand(gdim, cdim, k, r, ci)
            scale = torch.matmul(usq.transpose(2, 3), blocks.abs()).transpose(2, 3).sqrt()
        y.addcmul_(torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype), scale, value=io.w_noise)
    return y


class AnalogMVMFunction(torch.autograd.Function):
    """Autograd wrapper: forward through the forward periphery; backward is straight-through.

    Gradients treat quantisation, clipping and noise as identity (straight-through estimator,
    Bengio et al. 2013): ∂L/∂W = Σ_n d_n x_nᵀ, and ∂L/∂x = Wᵀ d read through the *backward*
    periphery (the transposed analog read of on-chip training), or exactly if it is ideal.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, grid: TileGrid, io_fwd: IOConfig, io_bwd: IOConfig, gen: torch.Generator | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, w)
        ctx.grid, ctx.io_bwd, ctx.gen = grid, io_bwd, gen
        with torch.no_grad():
            return analog_mvm(x, w, grid, io_fwd, gen)

    @staticmethod
    def backward(ctx, grad_y: Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            with torch.no_grad():
                grad_x = analog_mvm(grad_y, w.transpose(1, 2), ctx.grid.transposed(), ctx.io_bwd, ctx.gen)
        if ctx.needs_input_grad[1]:
            grad_w = torch.matmul(grad_y.permute(1, 2, 0), x.transpose(0, 1))
        return grad_x, grad_w, None, None, None, None
