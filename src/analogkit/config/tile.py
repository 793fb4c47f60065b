"""The complete description of one analog tile."""

from __future__ import annotations

from dataclasses import dataclass, field

from analogkit.config.base import ConfigBase
from analogkit.config.io import IOConfig
from analogkit.config.mapping import MappingConfig
from analogkit.devices.base import Device
from analogkit.inference.base import NoiseModel
from analogkit.inference.clipping import WeightClip
from analogkit.inference.modifiers import WeightModifier
from analogkit.inference.pcm import PCMLikeNoise
from analogkit.periphery.input_range import InputRangeConfig
from analogkit.update.config import UpdateConfig

DRIFT_COMPENSATION = ("none", "global", "per_column")


@dataclass
class TileConfig(ConfigBase):
    """Everything that describes an analog tile: read periphery forward and backward, mapping.

    The kind of weight follows from the config: with no pulsed device (the foundation), the weight
    is an ordinary ``nn.Parameter`` trained by autograd, with the periphery's non-idealities applied
    in the forward pass (and in the backward pass through ``backward``, the transposed read used
    by on-chip training; set ``backward=IOConfig.perfect()`` for a digital backward pass).
    With a pulsed ``device`` the weight is instead device state, trained on chip by pulses
    (see :mod:`analogkit.tile.pulsed` and :class:`analogkit.optim.AnalogSGD`).

    Hardware-aware training (weights as parameters; Rasch et al. 2023, Nat. Commun. 14:5282):
    ``modifier`` perturbs the weight the crossbar sees in each training mini-batch (noise,
    quantisation, drop-connect; straight-through gradient), ``clip`` bounds the parameter before
    every training forward (i.e. after every optimizer step), and ``input_range`` (if enabled)
    replaces dynamic noise management by a learned static DAC range.

    Inference on a programmed chip (see :mod:`analogkit.inference.lifecycle`): ``noise_model``
    says what programming, drift and read noise do to the conductances (default: PCM, Nandakumar
    et al. 2019); ``drift_compensation`` is the digital output correction applied in eval mode
    after drift ("none", "global" or "per_column"; Joshi et al. 2020).
    """

    forward: IOConfig = field(default_factory=IOConfig)
    backward: IOConfig = field(default_factory=IOConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    modifier: WeightModifier = field(default_factory=WeightModifier)
    clip: WeightClip = field(default_factory=WeightClip)
    input_range: InputRangeConfig = field(default_factory=InputRangeConfig)
    noise_model: NoiseModel = field(default_factory=PCMLikeNoise)
    drift_compensation: str = "global"
    device: Device | None = None
    update: UpdateConfig = field(default_factory=UpdateConfig)

    def validate(self) -> None:
        self.check_type("forward", IOConfig, "use an IOConfig")
        self.check_type("backward", IOConfig, "use an IOConfig")
        self.check_type("mapping", MappingConfig, "use a MappingConfig")
        self.check_type("modifier", WeightModifier, "use a WeightModifier")
        self.check_type("clip", WeightClip, "use a WeightClip")
        self.check_type("input_range", InputRangeConfig, "use an InputRangeConfig")
        self.check_type("noise_model", NoiseModel, "use a NoiseModel (for example PCMLikeNoise())")
        self.check_choice("drift_compensation", DRIFT_COMPENSATION)
        if self.device is not None and not (
            isinstance(self.device, ConfigBase)
            and all(hasattr(self.device, m) for m in ("build_state", "apparent_weight", "set_weights"))
        ):
            # a pulsed device, or a compound of devices with the same interface (unit cells, algorithms)
            self._fail("device", self.device, "use a device or compound config (for example ConstantStepDevice()) or None")
        self.check_type("update", UpdateConfig, "use an UpdateConfig")

    @classmethod
    def floating_point(cls) -> "TileConfig":
        """Exact floating-point MVM in both directions, no tiling: a digital reference."""
        return cls(
            forward=IOConfig.perfect(),
            backward=IOConfig.perfect(),
            mapping=MappingConfig(max_input_size=0, max_output_size=0),
        )
