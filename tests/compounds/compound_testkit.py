"""Shared helpers of the compound tests: deterministic devices, small layers, one training step."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

import analogkit
from analogkit.compounds import (
    BufferedTransferCompound,
    ChoppedTransferCompound,
    DynamicTransferCompound,
    MixedPrecisionCompound,
    OneSidedUnitCell,
    ReferenceUnitCell,
    TransferCompound,
    VectorUnitCell,
)
from analogkit.config import IOConfig, TileConfig
from analogkit.devices import ConstantStepDevice, IdealDevice, SoftBoundsDevice
from analogkit.nn import AnalogLinear
from analogkit.optim import AnalogSGD

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def ideal(dw: float = 0.01, bound: float = 10.0) -> IdealDevice:
    """A noiseless device: every pulse adds exactly ±dw (bounds far away)."""
    return IdealDevice(dw_min=dw, bounded=True, w_max=bound, w_min=-bound)


def constant(dw: float = 0.01, std: float = 0.0) -> ConstantStepDevice:
    """Constant steps without device-to-device variation."""
    return ConstantStepDevice(dw_min=dw, dw_min_std=std, dw_min_dtod=0.0, up_down_dtod=0.0,
                              w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0)


def soft_bounds(dw: float = 0.01, std: float = 0.0, up_down: float = 0.0) -> SoftBoundsDevice:
    return SoftBoundsDevice(dw_min=dw, dw_min_std=std, up_down=up_down, dw_min_dtod=0.0, up_down_dtod=0.0,
                            w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def example_compounds() -> dict[str, object]:
    """One valid instance of every compound class (small devices), by kind."""
    d = constant()
    return {
        "vector_unit_cell": VectorUnitCell(unit_cell_devices=[d, soft_bounds()], update_policy="single_random"),
        "reference_unit_cell": ReferenceUnitCell(unit_cell_devices=[d]),
        "one_sided_unit_cell": OneSidedUnitCell(unit_cell_devices=[d], refresh_every=2),
        "transfer_compound": TransferCompound(unit_cell_devices=[d, d, d], gamma=0.1),
        "buffered_transfer_compound": BufferedTransferCompound(unit_cell_devices=[d, d]),
        "chopped_transfer_compound": ChoppedTransferCompound(unit_cell_devices=[d, d], auto_scale=True),
        "dynamic_transfer_compound": DynamicTransferCompound(unit_cell_devices=[d, d]),
        "mixed_precision_compound": MixedPrecisionCompound(device=OneSidedUnitCell(unit_cell_devices=[d])),
    }


def layer_for(device, in_features: int = 6, out_features: int = 4, io: IOConfig | None = None, seed: int = 0,
              **tile_kw) -> AnalogLinear:
    analogkit.manual_seed(seed)
    io = IOConfig.perfect() if io is None else io
    cfg = TileConfig(forward=io, backward=io, device=device, **tile_kw)
    return AnalogLinear(in_features, out_features, bias=False, config=cfg)


def train_step(layer: AnalogLinear, opt: AnalogSGD, x: torch.Tensor) -> None:
    opt.zero_grad()
    layer(x).pow(2).sum().backward()
    opt.step()


def load_example(name: str):
    """Import ``examples/<name>.py`` as a module (the reproductions' functions are tested in small)."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"analogkit_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
