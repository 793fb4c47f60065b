"""How a layer's weight matrix is laid out on physical tiles."""

from __future__ import annotations

from dataclasses import dataclass

from analogkit.config.base import ConfigBase


@dataclass
class MappingConfig(ConfigBase):
    """Mapping of a logical weight matrix onto crossbar tiles.

    - ``max_input_size`` × ``max_output_size``: physical tile size (columns × rows seen by the
      layer); a larger matrix becomes a grid of tiles, each with its own periphery, whose partial
      outputs are summed digitally. 0 means "never split".
    - ``digital_bias``: bias added digitally after the ADC; if False, the bias is an extra crossbar
      column driven by a constant input of 1 (and goes through the analog non-idealities).
    - ``weight_scaling_omega``: if > 0, the weight is divided by a digital scale so that
      max|W| = ω on the crossbar (per layer, or per output column if ``weight_scaling_columnwise``);
      outputs are multiplied back by the scale (spec §1.5).
    - ``learn_out_scaling``: learnable digital output scale (scalar, or per column if
      ``out_scaling_columnwise``), initialised to 1.
    """

    max_input_size: int = 512
    max_output_size: int = 512
    digital_bias: bool = True
    weight_scaling_omega: float = 0.0
    weight_scaling_columnwise: bool = False
    learn_out_scaling: bool = False
    out_scaling_columnwise: bool = False

    def validate(self) -> None:
        self.check_int("max_input_size", 0, allowed="use a positive tile input size, or 0 for no splitting")
        self.check_int("max_output_size", 0, allowed="use a positive tile output size, or 0 for no splitting")
        for name in ("digital_bias", "weight_scaling_columnwise", "learn_out_scaling", "out_scaling_columnwise"):
            self.check_bool(name)
        self.check_range("weight_scaling_omega", 0, allowed="use a positive target max|W| on the crossbar, or 0 for no weight scaling")
