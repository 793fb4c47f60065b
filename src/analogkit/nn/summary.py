"""analog_summary: where a model's weights sit on tiles, and how well the crossbars are used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from analogkit.nn.base import analog_layers


@dataclass
class LayerSummary:
    """One analog layer: its matrix, tile grid, crossbar use and parameters."""

    name: str
    kind: str
    matrix: tuple[int, int]  # (rows = outputs, cols = inputs incl. analog bias) per group
    groups: int
    grid: tuple[int, int]  # tiles per group (rows × cols)
    n_tiles: int
    tile_size: tuple[int, int]  # physical crossbar (rows × cols)
    utilization: float  # used cross-points / available cross-points over this layer's tiles
    mvms_per_sample: int  # matrix-vector products per input sample (conv: output positions)
    analog_params: int
    digital_params: int


@dataclass
class AnalogSummary:
    """Per-layer rows and totals; ``print(summary)`` shows a table."""

    layers: list[LayerSummary]
    digital_only_params: int  # parameters of modules that are not analog layers
    total_params: int = field(init=False)
    analog_params: int = field(init=False)
    n_tiles: int = field(init=False)

    def __post_init__(self) -> None:
        self.analog_params = sum(r.analog_params for r in self.layers)
        self.n_tiles = sum(r.n_tiles for r in self.layers)
        self.total_params = self.analog_params + sum(r.digital_params for r in self.layers) + self.digital_only_params

    def __str__(self) -> str:
        head = f"{'layer':<24} {'kind':<13} {'matrix':>11} {'grp':>4} {'tiles':>7} {'use':>6} {'MVM/sample':>10} {'analog':>9} {'digital':>8}"
        lines = [head, "-" * len(head)]
        for r in self.layers:
            lines.append(
                f"{r.name:<24.24} {r.kind:<13} {r.matrix[0]:>5}×{r.matrix[1]:<5} {r.groups:>4} {r.n_tiles:>7} "
                f"{100 * r.utilization:>5.1f}% {r.mvms_per_sample:>10} {r.analog_params:>9} {r.digital_params:>8}"
            )
        lines.append("-" * len(head))
        frac = self.analog_params / self.total_params if self.total_params else 0.0
        lines.append(
            f"{self.n_tiles} tiles; {self.analog_params} analog and "
            f"{self.total_params - self.analog_params} digital parameters ({100 * frac:.1f}% analog)"
        )
        return "\n".join(lines)


def analog_summary(model: nn.Module, input_shape: Sequence[int], *, dtype: torch.dtype = torch.float32) -> AnalogSummary:
    """Summarise the analog layers of ``model`` for one input of ``input_shape`` (without batch).

    Runs one forward pass on zeros (in eval mode, without gradients; the mode is restored) to
    count how many matrix-vector products each layer performs per sample.
    """
    counts: dict[int, int] = {}
    hooks = []
    for _, layer in analog_layers(model):
        def hook(module: nn.Module, args: tuple, _out: torch.Tensor) -> None:
            x = args[0]
            if hasattr(module, "kernel_size"):
                counts[id(module)] = int(_out[0, 0].numel())  # output positions per sample
            else:
                counts[id(module)] = int(x[0].numel() // x.shape[-1]) if x.dim() > 1 else 1
        hooks.append(layer.register_forward_hook(hook))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, dtype=dtype, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()

    rows: list[LayerSummary] = []
    analog_param_ids: set[int] = set()
    for name, layer in analog_layers(model):
        tile = layer.tile
        g = tile.grid
        mapping = tile.config.mapping
        phys = (mapping.max_output_size or g.co, mapping.max_input_size or g.ci)
        used = tile.groups * g.out_size * g.in_size
        analog = layer.weight.numel() + (layer.bias.numel() if tile.analog_bias and layer.bias is not None else 0)
        own = list(layer.parameters())
        analog_param_ids.update(id(p) for p in own)
        digital = sum(p.numel() for p in own) - analog
        rows.append(LayerSummary(
            name=name or "(root)", kind=type(layer).__name__, matrix=(g.out_size, g.in_size), groups=tile.groups,
            grid=(g.rows, g.cols), n_tiles=tile.n_tiles, tile_size=phys,
            utilization=used / (tile.n_tiles * phys[0] * phys[1]), mvms_per_sample=counts.get(id(layer), 0),
            analog_params=analog, digital_params=digital,
        ))
    digital_only = sum(p.numel() for p in model.parameters() if id(p) not in analog_param_ids)
    return AnalogSummary(rows, digital_only)
