"""The complete description of one analog tile."""

from __future__ import annotations

from dataclasses import dataclass, field

from analogkit.config.base import ConfigBase
from analogkit.config.io import IOConfig
from analogkit.config.mapping import MappingConfig
from analogkit.inference.base import NoiseModel
from analogkit.inference.pcm import PCMLikeNoise

DRIFT_COMPENSATION = ("none", "global", "per_column")


@dataclass
class TileConfig(ConfigBase):
    """Everything that describes an analog tile: read periphery forward and backward, mapping.

    The kind of weight follows from the config: with no pulsed device (the foundation), the weight
    is an ordinary ``nn.Parameter`` trained by autograd, with the periphery's non-idealities applied
    in the forward pass (and in the backward pass through ``backward``, the transposed read used
    by on-chip training; set ``backward=IOConfig.perfect()`` for a digital backward pass).
    Device and update settings for pulsed on-chip training extend this class in ``config``.

    Inference on a programmed chip (see :mod:`analogkit.inference.lifecycle`): ``noise_model``
    says what programming, drift and read noise do to the conductances (default: PCM, Nandakumar
    et al. 2019); ``drift_compensation`` is the digital output correction applied in eval mode
    after drift ("none", "global" or "per_column"; Joshi et al. 2020).
    """

    forward: IOConfig = field(default_factory=IOConfig)
    backward: IOConfig = field(default_factory=IOConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    noise_model: NoiseModel = field(default_factory=PCMLikeNoise)
    drift_compensation: str = "global"

    def validate(self) -> None:
        self.check_type("forward", IOConfig, "use an IOConfig")
        self.check_type("backward", IOConfig, "use an IOConfig")
        self.check_type("mapping", MappingConfig, "use a MappingConfig")
        self.check_type("noise_model", NoiseModel, "use a NoiseModel (for example PCMLikeNoise())")
        self.check_choice("drift_compensation", DRIFT_COMPENSATION)

    @classmethod
    def floating_point(cls) -> "TileConfig":
        """Exact floating-point MVM in both directions, no tiling: a digital reference."""
        return cls(
            forward=IOConfig.perfect(),
            backward=IOConfig.perfect(),
            mapping=MappingConfig(max_input_size=0, max_output_size=0),
        )
