"""AnalogConv1d/2d/3d: convolutions as analog matrix-vector products over input patches.

Each output position reads one input patch (im2col) through the tiles: the kernel of a group is
a matrix (out/G) × (in/G · prod(kernel)), one MVM per patch (the usual mapping of convolutions on
crossbars, e.g. Gokmen et al. 2017, "Training deep convolutional neural networks with resistive
cross-point devices", Fig. 1). Grouped and depthwise convolutions map every group to its own tile
grid (batched, no loop over groups). All ``torch.nn.Conv*d`` arguments are supported: stride,
dilation, ``padding`` (ints, ``"same"``, ``"valid"``), every ``padding_mode`` and ``groups``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from analogkit.config.tile import TileConfig
from analogkit.nn.base import AnalogLayer
from analogkit.tile.tile import AnalogTile

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value: int | Sequence[int], n: int, name: str, cls: str, minimum: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in values):
        raise ValueError(f"{cls}.{name}: {value!r} is not allowed; use an integer >= {minimum} or a tuple of {n} of them")
    return values  # type: ignore[return-value]


def im2col(x: Tensor, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]) -> Tensor:
    """Patches of an (already padded) input (N, C, *spatial) → (N, *out_spatial, C, *kernel)."""
    nd = len(kernel)
    for i in range(nd):
        span = dilation[i] * (kernel[i] - 1) + 1
        x = x.unfold(2 + i, span, stride[i])
        if dilation[i] > 1:
            x = x[..., :: dilation[i]]
    # x: (N, C, *out_spatial, *kernel) → (N, *out_spatial, C, *kernel)
    perm = [0, *range(2, 2 + nd), 1, *range(2 + nd, 2 + 2 * nd)]
    return x.permute(perm)


class _AnalogConvNd(AnalogLayer):
    _nd: int = 0
    _digital: type[nn.Module] = nn.Module

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        config: TileConfig | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        cls, nd = type(self).__name__, self._nd
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{cls}.{name}: {value!r} is not allowed; use an integer >= 1")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{cls}.groups: {groups} is not allowed; in_channels ({in_channels}) and "
                f"out_channels ({out_channels}) must both be divisible by groups"
            )
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{cls}.padding_mode: {padding_mode!r} is not allowed; use one of {', '.join(PADDING_MODES)}")
        self.kernel_size = _ntuple(kernel_size, nd, "kernel_size", cls, 1)
        self.stride = _ntuple(stride, nd, "stride", cls, 1)
        self.dilation = _ntuple(dilation, nd, "dilation", cls, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{cls}.padding: {padding!r} is not allowed; use 'same', 'valid', an integer >= 0 or a tuple")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{cls}.padding: 'same' is not allowed with stride {self.stride}; use stride 1")
            self.padding: tuple[int, ...] | str = padding
        else:
            self.padding = _ntuple(padding, nd, "padding", cls, 0)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.padding_mode = padding_mode
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size, **factory))
        self.bias: nn.Parameter | None
        self.register_parameter("bias", nn.Parameter(torch.empty(out_channels, **factory)) if bias else None)
        self.patch_size = in_channels // groups * math.prod(self.kernel_size)
        self.tile = AnalogTile(out_channels // groups, self.patch_size, config, groups=groups, bias=bias, seed=seed)
        self.tile.to(device=device)
        self.reset_parameters()
        self._attach_weight()


    def _pad_amounts(self) -> list[int]:
        """Padding for ``F.pad`` (last dimension first), from ints or 'same'/'valid'."""
        if self.padding == "valid":
            return [0] * (2 * self._nd)
        if self.padding == "same":
            amounts: list[int] = []
            for k, d in zip(reversed(self.kernel_size), reversed(self.dilation)):
                total = d * (k - 1)
                amounts += [total // 2, total - total // 2]
            return amounts
        return [p for p in reversed(self.padding) for _ in range(2)]  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        nd = self._nd
        unbatched = x.dim() == nd + 1
        if unbatched:
            x = x.unsqueeze(0)
        if x.dim() != nd + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__}: input of shape {tuple(x.shape)} is not allowed; "
                f"use (N, {self.in_channels}, *{nd} spatial dims)"
            )
        pads = self._pad_amounts()
        if any(pads):
            mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
            x = F.pad(x, pads, mode=mode)
        patches = im2col(x, self.kernel_size, self.stride, self.dilation)
        n, out_spatial = patches.shape[0], patches.shape[1 : 1 + nd]
        g = self.groups
        cols = patches.reshape(-1, g, self.patch_size)
        y = self.tile(cols, self.tile_weight(), self.bias)  # (M, G, out/G)
        y = y.reshape(n, *out_spatial, self.out_channels)
        y = y.permute(0, nd + 1, *range(1, nd + 1))
        return y.squeeze(0) if unbatched else y

    def _digital_kwargs(self) -> dict[str, Any]:
        return dict(
            in_channels=self.in_channels, out_channels=self.out_channels, kernel_size=self.kernel_size,
            stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
            bias=self.bias is not None, padding_mode=self.padding_mode,
        )

    @classmethod
    def from_digital(cls, module: nn.Module, config: TileConfig | None = None, seed: int | None = None) -> "_AnalogConvNd":
        """An analog copy of a ``nn.Conv*d`` (same weights, device and dtype)."""
        layer = cls(
            module.in_channels, module.out_channels, module.kernel_size, module.stride,  # type: ignore[arg-type]
            module.padding, module.dilation, module.groups, module.bias is not None,  # type: ignore[arg-type]
            module.padding_mode, config,  # type: ignore[arg-type]
            device=module.weight.device, dtype=module.weight.dtype, seed=seed,  # type: ignore[union-attr]
        )
        return layer._copy_from(module)  # type: ignore[return-value]

    def to_digital(self) -> nn.Module:
        """The equivalent ``nn.Conv*d`` with this layer's weights."""
        module = self._digital(**self._digital_kwargs(), device=self.weight.device, dtype=self.weight.dtype)
        return self._copy_to(module)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ("valid", (0,) * self._nd):
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        return s


class AnalogConv1d(_AnalogConvNd):
    """1-d convolution on analog tiles; arguments as ``torch.nn.Conv1d`` plus ``config``."""

    _nd = 1
    _digital = nn.Conv1d


class AnalogConv2d(_AnalogConvNd):
    """2-d convolution on analog tiles; arguments as ``torch.nn.Conv2d`` plus ``config``."""

    _nd = 2
    _digital = nn.Conv2d


class AnalogConv3d(_AnalogConvNd):
    """3-d convolution on analog tiles; arguments as ``torch.nn.Conv3d`` plus ``config``."""

    _nd = 3
    _digital = nn.Conv3d
