"""The complete description of one analog tile."""

from __future__ import annotations

from dataclasses import dataclass, field

from analogkit.config.base import ConfigBase
from analogkit.config.io import IOConfig
from analogkit.config.mapping import MappingConfig


@dataclass
class TileConfig(ConfigBase):
    """Everything that describes an analog tile: read periphery forward and backward, mapping.

    The kind of weight follows from the config: with no pulsed device (the foundation), the weight
    is an ordinary ``nn.Parameter`` trained by autograd, with the periphery's non-idealities applied
    in the forward pass (and in the backward pass through ``backward``, the transposed read used
    by on-chip training; set ``backward=IOConfig.perfect()`` for a digital backward pass).
    Device and update settings for pulsed on-chip training extend this class in ``config``.
    """

    forward: IOConfig = field(default_factory=IOConfig)
    backward: IOConfig = field(default_factory=IOConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)

    def validate(self) -> None:
        self.check_type("forward", IOConfig, "use an IOConfig")
        self.check_type("backward", IOConfig, "use an IOConfig")
        self.check_type("mapping", MappingConfig, "use a MappingConfig")

    @classmethod
    def floating_point(cls) -> "TileConfig":
        """Exact floating-point MVM in both directions, no tiling: a digital reference."""
        return cls(
            forward=IOConfig.perfect(),
            backward=IOConfig.perfect(),
            mapping=MappingConfig(max_input_size=0, max_output_size=0),
        )
