"""Define your own pulsed device: subclass a device config, register it, plot it and train with it.

``HfOxReRAMExample`` below is a soft-bounds device (the update rule of
:class:`analogkit.devices.SoftBoundsDevice`) with its own parameters and one extra check. It is
an illustration, not a fit to measured data. Registering it under a ``kind`` makes it a
first-class device: it serialises to YAML (so experiment configs can name it), it can be a preset,
``analogkit device plot`` draws it, and tiles train it with pulses.

    python examples/custom_device.py [--out examples/output] [--epochs 5]

Writes ``custom_device.png`` (pulse response) and prints the tile config as YAML and the test
accuracy of on-chip training on the bundled digits (a few seconds).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

import analogkit
from analogkit import TileConfig
from analogkit.analysis.device_plots import plot_device
from analogkit.data import digits_loaders
from analogkit.devices import DEVICE_PRESETS, SoftBoundsDevice, build_preset, device_from_dict, register_device
from analogkit.experiments import evaluate, train_epoch
from analogkit.models import MLP
from analogkit.nn import convert_to_analog
from analogkit.optim import AnalogSGD


@register_device
@dataclass
class HfOxReRAMExample(SoftBoundsDevice):
    """An illustrative HfOx ReRAM cell: soft bounds on [−1, 1] with ~400 states, SET steps 5 % larger
    than RESET steps, 10 % device-to-device and 50 % cycle-to-cycle step variation.

    Update rule as :class:`SoftBoundsDevice`: up w ← w + Δw⁺(1 − w/b^max) + noise, down
    w ← w − Δw⁻(1 − w/b^min) + noise. Example parameters, not fitted to a measurement.
    """

    kind = "hfox_reram_example"

    dw_min: float = 0.005
    up_down: float = 0.05
    w_max: float = 1.0
    w_min: float = -1.0
    dw_min_dtod: float = 0.1
    dw_min_std: float = 0.5
    mult_noise: bool = False

    def validate(self) -> None:
        super().validate()
        if not self.w_min < 0 < self.w_max:
            self._fail("w_min", self.w_min, "use bounds around 0 (w_min < 0 < w_max) so that weights can change sign")


def hfox_example() -> HfOxReRAMExample:
    return HfOxReRAMExample()


hfox_example.source = "illustrative HfOx ReRAM cell of examples/custom_device.py (not fitted to data)"  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("examples/output"))
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)

    # a preset by name, next to the built-in ones (analogkit presets lists DEVICE_PRESETS)
    if "hfox_example" not in DEVICE_PRESETS:
        DEVICE_PRESETS.add("hfox_example", hfox_example)
    device = build_preset("hfox_example")

    # configs are data: the device round-trips with its kind, inside a TileConfig too
    config = TileConfig(device=device)
    assert TileConfig.from_yaml(config.to_yaml()) == config
    assert device_from_dict({"kind": "hfox_reram_example", "dw_min": 0.01}).dw_min == 0.01
    print("device as YAML (use it under a training's tile: {device: ...} in an experiment):")
    print("  " + "\n  ".join(f"{k}: {v}" for k, v in {"kind": device.kind, **device.to_dict()}.items()))

    path = plot_device(device, args.out / "custom_device.png", title="HfOxReRAMExample", n_traces=4)
    print(f"wrote {path}")

    analogkit.manual_seed(0)
    train, test = digits_loaders(batch_size=32)
    model = convert_to_analog(MLP(64, hidden=(32,), num_classes=10), config)
    opt = AnalogSGD(model.parameters(), lr=0.1)
    for epoch in range(1, args.epochs + 1):
        loss = train_epoch(model, train, opt)
        print(f"epoch {epoch}: train loss {loss:.3f}, test accuracy {100 * evaluate(model, test):.1f}%")


if __name__ == "__main__":
    main()
