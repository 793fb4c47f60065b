"""AnalogLinear: a fully connected layer computed on analog tiles."""

from __future__ import annotations


import torch
from torch import Tensor, nn

from analogkit.config.tile import TileConfig
from analogkit.nn.base import AnalogLayer
from analogkit.tile.tile import AnalogTile


class AnalogLinear(AnalogLayer):
    """``y = W x + b`` with ``W x`` computed by analog tiles (see :class:`~analogkit.tile.AnalogTile`).

    ``weight`` (out, in) and ``bias`` (out,) are ordinary parameters named as in ``nn.Linear``,
    so a digital ``nn.Linear`` state dict loads into it (plus the tile's own state).

    >>> import torch, analogkit
    >>> from analogkit.nn import AnalogLinear
    >>> layer = AnalogLinear(4, 3)  # default TileConfig: 7-bit DAC, 9-bit ADC, output noise
    >>> layer(torch.randn(2, 4)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        config: TileConfig | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AnalogLinear.{name}: {value!r} is not allowed; use an integer >= 1")
        self.in_features, self.out_features = in_features, out_features
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias: nn.Parameter | None
        self.register_parameter("bias", nn.Parameter(torch.empty(out_features, **factory)) if bias else None)
        self.tile = AnalogTile(out_features, in_features, config, bias=bias, seed=seed)
        self.tile.to(device=device)
        self.reset_parameters()
        self._attach_weight()


    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        y = self.tile(x.reshape(-1, 1, self.in_features), self.tile_weight(), self.bias)
        return y.reshape(*lead, self.out_features)

    @classmethod
    def from_digital(cls, module: nn.Linear, config: TileConfig | None = None, seed: int | None = None) -> "AnalogLinear":
        """An analog copy of ``module`` (same weights, device and dtype)."""
        layer = cls(
            module.in_features, module.out_features, module.bias is not None, config,
            device=module.weight.device, dtype=module.weight.dtype, seed=seed,
        )
        return layer._copy_from(module)  # type: ignore[return-value]

    def to_digital(self) -> nn.Linear:
        """A plain ``nn.Linear`` with this layer's weights."""
        module = nn.Linear(self.in_features, self.out_features, self.bias is not None,
                           device=self.weight.device, dtype=self.weight.dtype)
        return self._copy_to(module)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
