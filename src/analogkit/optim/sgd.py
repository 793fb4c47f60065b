"""AnalogSGD: stochastic gradient descent where pulsed tiles are updated by pulses."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import Tensor

from analogkit.tile.tile import AnalogTile


def analog_tiles_in(params: Iterable[Tensor]) -> list[AnalogTile]:
    """The pulsed tiles whose ``update_handle`` is among ``params``."""
    tiles = []
    for p in params:
        ref = getattr(p, "_analog_tile", None)
        tile = ref() if ref is not None else None
        if tile is not None:
            tiles.append(tile)
    return tiles


class AnalogSGD(torch.optim.SGD):
    """SGD for models with analog layers: use it like ``torch.optim.SGD(model.parameters(), lr=…)``.

    - Ordinary parameters (digital layers, biases, non-pulsed analog weights) follow
      ``torch.optim.SGD`` with every option it has (momentum, weight decay, nesterov, …).
    - Pulsed tiles (layers whose config has a ``device``) are found through their
      ``update_handle`` among the parameters. Their forward/backward passes recorded the inputs x and
      output gradients d; ``step()`` applies W ← W − lr·d xᵀ to the devices as stochastic pulse
      trains (Gokmen & Vlasov 2016), with the ``lr`` of the handle's parameter group, so learning-rate
      schedulers work. Momentum and weight decay do not apply to pulsed tiles (the update is
      the crossbar's own rank-one pulse update).
    """

    def __init__(self, params: Iterable[Any], lr: float = 0.01, **kwargs: Any) -> None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(f"AnalogSGD.lr: {lr!r} is not allowed; use a learning rate > 0")
        super().__init__(params, lr=lr, **kwargs)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = super().step(closure)
        for group in self.param_groups:
            for tile in analog_tiles_in(group["params"]):
                if tile.has_pending_update:
                    tile.apply_update(float(group["lr"]))
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients and any (x, d) recorded by pulsed tiles but not yet applied."""
        super().zero_grad(set_to_none)
        for group in self.param_groups:
            for tile in analog_tiles_in(group["params"]):
                tile.discard_update()
