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
from analogkit.periphery.converters import noise_management_scale, quantize_


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


def _single_tile(x: Tensor, w: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """Fast path for one tile: x (N, in), w (out, in) → (N, out)."""
    alpha = noise_management_scale(x, io)
    u = x / alpha if alpha is not None else x.clone()
    quantize_(u, io.inp_step, io.inp_bound, io.inp_sto_round, gen)
    if io.inp_noise > 0:
        u.add_(torch.randn(u.shape, generator=gen, device=u.device, dtype=u.dtype), alpha=io.inp_noise)
    y = _read_out(u, w.t(), io, gen)
    if io.bound_management == "iterative":
        y = _bound_management_single(x, w, alpha, y, io, gen)
    else:
        y = _rescale(y, alpha, io)
    return y


def _read_out(u: Tensor, wt: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """Crossbar product of DAC outputs ``u`` with ``wt`` (in × out), weight/output noise, ADC."""
    y = u @ wt
    _weight_noise_(y, u, wt, io, gen)
    if io.out_noise > 0:
        y.add_(torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype), alpha=io.out_noise)
    return quantize_(y, io.out_step, io.out_bound, io.out_sto_round, gen)


def _weight_noise_(y: Tensor, u: Tensor, wt: Tensor, io: IOConfig, gen: torch.Generator | None) -> None:
    """Output-referred short-term weight read noise, in place.

    additive_constant: y_i += σ_w ‖x‖₂ ξ_i  (i.i.d. weight noise of std σ_w on every cross-point);
    pcm_read:          y_i += σ_w √(Σ_j |w_ij| x_j²) ξ_i  (conductance-proportional read noise);
    (Rasch et al. 2023, Nat. Commun. 14:5282, Methods "Weight noise").
    """
    if io.w_noise <= 0:
        return
    if io.w_noise_type == "additive_constant":
        scale = u.norm(dim=-1, keepdim=True).expand_as(y)
    else:  # pcm_read
        scale = (u.square() @ wt.abs()).sqrt_()
    noise = torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype)
    y.addcmul_(noise, scale, value=io.w_noise)


def _rescale(y: Tensor, alpha: Tensor | None, io: IOConfig, s: Tensor | float = 1.0) -> Tensor:
    if alpha is not None:
        y = y * alpha
    if not isinstance(s, float):
        y = y * s
    if io.out_scale != 1.0:
        y = y * io.out_scale
    return y


def _bm_scales_allowed(io: IOConfig) -> int:
    """Number of halvings of the input that bound management may try (limits ``max_bm_factor`` and ``max_bm_res``)."""
    step = resolution_step(io.inp_res)
    k = 0
    while 2 ** (k + 1) <= io.max_bm_factor and (step == 0 or step * 2 ** (k + 1) <= io.max_bm_res):
        k += 1
    return k


def _bound_management_single(x: Tensor, w: Tensor, alpha: Tensor | None, y: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """Iterative bound management for one tile: re-read saturated rows with the input halved.

    Rows whose output reached ±out_bound are read again with x/(α s), s = 2, 4, … until no output
    saturates or the limits are hit (Gokmen et al. 2017, Sec. 3, bound management); the result is
    scaled back by α s. Only saturated rows are re-read, so the common case costs one check.
    """
    n_tries = _bm_scales_allowed(io)
    s = None
    for _ in range(n_tries):
        sat = y.abs().amax(dim=-1) >= io.out_bound
        if not bool(sat.any()):
            break
        if s is None:
            s = torch.ones(y.shape[0], 1, device=y.device, dtype=y.dtype)
        idx = sat.nonzero().squeeze(1)
        s[idx] *= 2
        xs = x[idx]
        denom = s[idx] if alpha is None else alpha[idx] * s[idx]
        u = xs / denom
        quantize_(u, io.inp_step, io.inp_bound, io.inp_sto_round, gen)
        if io.inp_noise > 0:
            u.add_(torch.randn(u.shape, generator=gen, device=u.device, dtype=u.dtype), alpha=io.inp_noise)
        y[idx] = _read_out(u, w.t(), io, gen)
    return _rescale(y, alpha, io, 1.0 if s is None else s)


def _tile_grid(xg: Tensor, blocks: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """All tiles at once. xg: (G, C, N, ci); blocks: (G, C, R, ci, co) → y: (G, C, N, R, co), rescaled."""
    gdim, cdim, n, _ = xg.shape
    r, co = blocks.shape[2], blocks.shape[4]
    alpha = noise_management_scale(xg, io)  # (G, C, N, 1)
    u = xg / alpha if alpha is not None else xg.clone()
    quantize_(u, io.inp_step, io.inp_bound, io.inp_sto_round, gen)
    y = _grid_read_out(u, blocks, io, gen)  # (G, C, N, R, co)
    a = alpha.unsqueeze(-1) if alpha is not None else None  # (G, C, N, 1, 1)
    if io.bound_management == "iterative":
        n_tries = _bm_scales_allowed(io)
        s = None
        for _ in range(n_tries):
            sat = y.abs().amax(dim=-1) >= io.out_bound  # (G, C, N, R)
            if not bool(sat.any()):
                break
            if s is None:
                s = torch.ones(gdim, cdim, n, r, device=y.device, dtype=y.dtype)
            s = torch.where(sat, s * 2, s)
            rows = sat.any(dim=(0, 1, 3)).nonzero().squeeze(1)  # input vectors with any saturated tile
            x_sub = xg[:, :, rows].unsqueeze(3)  # (G, C, K, 1, ci)
            den = s[:, :, rows].unsqueeze(-1)
            if alpha is not None:
                den = den * alpha[:, :, rows].unsqueeze(-1)
            u_sub = quantize_(x_sub / den, io.inp_step, io.inp_bound, io.inp_sto_round, gen)  # (G, C, K, R, ci)
            y_sub = _grid_read_out_per_row(u_sub, blocks, io, gen)
            redo = sat[:, :, rows].unsqueeze(-1)
            y[:, :, rows] = torch.where(redo, y_sub, y[:, :, rows])
        if s is not None:
            y = y * s.unsqueeze(-1)
    if a is not None:
        y = y * a
    if io.out_scale != 1.0:
        y = y * io.out_scale
    return y


def _grid_read_out(u: Tensor, blocks: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """u: (G, C, N, ci) shared by the R tiles of a column → (G, C, N, R, co) after noise and ADC."""
    gdim, cdim, n, ci = u.shape
    r, co = blocks.shape[2], blocks.shape[4]
    if io.inp_noise > 0:
        # every tile's DAC adds its own noise, so the input differs per tile row
        u_r = u.unsqueeze(2).expand(gdim, cdim, r, n, ci)
        u_r = u_r + io.inp_noise * torch.randn(u_r.shape, generator=gen, device=u.device, dtype=u.dtype)
        y = torch.matmul(u_r, blocks).permute(0, 1, 3, 2, 4)  # (G, C, N, R, co)
        y = _grid_noise_adc(y, u_r.permute(0, 1, 3, 2, 4), blocks, io, gen)
        return y
    wcat = blocks.permute(0, 1, 3, 2, 4).reshape(gdim, cdim, ci, r * co)
    y = torch.matmul(u, wcat).reshape(gdim, cdim, n, r, co)
    return _grid_noise_adc(y, u.unsqueeze(3), blocks, io, gen)


def _grid_read_out_per_row(u: Tensor, blocks: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """u: (G, C, K, R, ci), a separate input per tile → (G, C, K, R, co)."""
    if io.inp_noise > 0:
        u = u + io.inp_noise * torch.randn(u.shape, generator=gen, device=u.device, dtype=u.dtype)
    y = torch.matmul(u.permute(0, 1, 3, 2, 4), blocks).permute(0, 1, 3, 2, 4)
    return _grid_noise_adc(y, u, blocks, io, gen)


def _grid_noise_adc(y: Tensor, u: Tensor, blocks: Tensor, io: IOConfig, gen: torch.Generator | None) -> Tensor:
    """Weight noise, output noise and ADC on grid outputs y (G, C, N, R, co); u is (G, C, N, R|1, ci)."""
    y = y.contiguous()
    if io.w_noise > 0:
        if io.w_noise_type == "additive_constant":
            scale = u.square().sum(dim=-1, keepdim=True).sqrt()
        else:  # pcm_read: Σ_j |w_ij| u_j² per tile
            scale = torch.matmul(u.square().permute(0, 1, 3, 2, 4), blocks.abs()).permute(0, 1, 3, 2, 4).clamp(min=0).sqrt()
        y.addcmul_(torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype), scale.expand_as(y), value=io.w_noise)
    if io.out_noise > 0:
        y.add_(torch.randn(y.shape, generator=gen, device=y.device, dtype=y.dtype), alpha=io.out_noise)
    return quantize_(y, io.out_step, io.out_bound, io.out_sto_round, gen)


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
