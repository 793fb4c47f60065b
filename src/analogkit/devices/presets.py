"""Device presets: configured device models fitted to published devices, by short name.

Each entry of :data:`DEVICE_PRESETS` is a zero-argument factory returning a new device config;
``factory.source`` cites the measurement and the fit. The numbers are the fits published with IBM
AIHWKit's device presets (``aihwkit/simulator/presets/devices.py``, Rasch et al. 2021,
arXiv:2104.02184), which the cited papers' data were fitted to; they are facts about those devices,
re-entered here by hand. ``build_preset(name)`` returns a device; ``preset_source(name)`` its citation.
"""

from __future__ import annotations

from typing import Callable

from analogkit.config.base import Registry
from analogkit.devices.base import Device
from analogkit.devices.constant_step import ConstantStepDevice
from analogkit.devices.exp_step import ExpStepDevice
from analogkit.devices.linear_step import LinearStepDevice
from analogkit.devices.soft_bounds_reference import SoftBoundsReferenceDevice

__all__ = ["DEVICE_PRESETS", "build_preset", "preset_source"]

#: Zero-argument factories of configured devices, by name; each has a ``source`` attribute.
DEVICE_PRESETS = Registry("device preset")

_FIT = "fit parameters as published in IBM AIHWKit's {cls} (Rasch et al. 2021, arXiv:2104.02184)"


def _preset(name: str, source: str) -> Callable[[Callable[[], Device]], Callable[[], Device]]:
    def deco(fn: Callable[[], Device]) -> Callable[[], Device]:
        fn.source = source  # type: ignore[attr-defined]
        DEVICE_PRESETS.add(name, fn)
        return fn

    return deco


def build_preset(name: str) -> Device:
    """A new device config for the preset ``name`` (see ``list(DEVICE_PRESETS)``)."""
    return DEVICE_PRESETS.get(name)()


def preset_source(name: str) -> str:
    return DEVICE_PRESETS.get(name).source


@_preset(
    "reram_es",
    "ReRAM (Gong et al. 2018, 'Signal and noise extraction from analog memory elements for neuromorphic "
    "computing', Nat. Commun. 9:2102); exponential-step fit, " + _FIT.format(cls="ReRamESPresetDevice"),
)
def reram_es() -> ExpStepDevice:
    """ReRAM fitted with the exponential-step model: ±1 range, strong c2c (5·step) and write noise (75·dw_min)."""
    return ExpStepDevice(
        dw_min=0.00135, up_down=0.259359, w_max=1.0, w_min=-1.0,
        a=-0.5, b=-0.5, gamma_up=5.0, gamma_down=5.0, A_up=-1.18445, A_down=-0.081404,
        dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.3, w_min_dtod=0.3,
        dw_min_std=5.0, write_noise_std=75.0,
    )


@_preset(
    "reram_sb",
    "ReRAM (Gong et al. 2018, Nat. Commun. 9:2102); loose soft-bounds fit assuming a reference at the "
    "symmetry point, " + _FIT.format(cls="ReRamSBPresetDevice"),
)
def reram_sb() -> SoftBoundsReferenceDevice:
    """ReRAM as soft bounds on [−0.75, 1.25] (symmetry point at 0), additive c2c noise 3.75·step, write noise 56·dw_min."""
    return SoftBoundsReferenceDevice(
        dw_min=0.002, up_down=0.0, w_max=1.25, w_min=-0.75, mult_noise=False,
        dw_min_dtod=0.3, up_down_dtod=0.01, w_max_dtod=0.3 / 1.25, w_min_dtod=0.3 / 0.75,
        dw_min_std=3.75, write_noise_std=56.0,
    )


@_preset(
    "capacitor",
    "capacitor cell (Li et al. 2018, 'Capacitor-based cross-point array for analog neural network with "
    "record symmetry and linearity', VLSI Technology Symp.); linear-step fit with assumed leakage, "
    + _FIT.format(cls="CapacitorPresetDevice"),
)
def capacitor() -> LinearStepDevice:
    """Capacitor cell: near-linear steps (γ = 0.05), small variation, leakage with lifetime 10⁶ decay steps.

    The lifetime is in calls of ``decay`` (e.g. mini-batches); it is an assumption, to be matched to
    the physical leak and the time one update cycle takes.
    """
    return LinearStepDevice(
        dw_min=0.005, up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False,
        gamma_up=0.05, gamma_down=0.05, gamma_up_dtod=0.01, gamma_down_dtod=0.01,
        dw_min_dtod=0.1, up_down_dtod=0.06, w_max_dtod=0.07, w_min_dtod=0.07,
        dw_min_std=0.3, write_noise_std=0.0, mean_bound_reference=True,
        lifetime=1.0e6, lifetime_dtod=0.3,
    )


@_preset(
    "ecram",
    "Li-ion ECRAM (Tang et al. 2018, 'ECRAM as scalable synaptic cell for high-speed, low-power "
    "neuromorphic computing', IEDM); linear-step fit, range shifted to put the symmetry point at 0, "
    + _FIT.format(cls="EcRamPresetDevice"),
)
def ecram() -> LinearStepDevice:
    """Li-ion ECRAM: linear steps with γ⁺ = 0.115, γ⁻ = 0.509 on [−0.83, 1.17], 30 % c2c."""
    return LinearStepDevice(
        dw_min=0.002, up_down=0.0, w_max=1.1724, w_min=-0.8276, mult_noise=True,
        gamma_up=0.1153, gamma_down=0.5085, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
        dw_min_dtod=0.1, up_down_dtod=0.01, w_max_dtod=0.05, w_min_dtod=0.05,
        dw_min_std=0.3, write_noise_std=0.0, mean_bound_reference=True,
    )


@_preset(
    "ecram_mo",
    "metal-oxide ECRAM (Kim et al. 2019, 'Metal-oxide based, CMOS-compatible ECRAM for deep learning "
    "accelerator', IEDM); linear-step fit, " + _FIT.format(cls="EcRamMOPresetDevice"),
)
def ecram_mo() -> LinearStepDevice:
    """Metal-oxide ECRAM: ~7000 small steps (dw_min 2.8·10⁻⁴), γ⁺ = 0.415, γ⁻ = 0.734, strong c2c (200 %)."""
    return LinearStepDevice(
        dw_min=2.8214e-4, up_down=0.0, w_max=1.1714, w_min=-0.8286, mult_noise=True,
        gamma_up=0.4152, gamma_down=0.7342, gamma_up_dtod=0.05, gamma_down_dtod=0.05,
        dw_min_dtod=0.1, up_down_dtod=0.01, w_max_dtod=0.05, w_min_dtod=0.05,
        dw_min_std=2.0, write_noise_std=0.0, mean_bound_reference=True,
    )


@_preset(
    "idealized",
    "idealized constant-step device: Gokmen & Vlasov 2016 (Front. Neurosci. 10:333) specifications with "
    "no up/down d2d bias and ~10000 states, as used by Rasch, Gokmen & Haensch 2019 (IEEE Design & Test, "
    "arXiv:1906.02698); " + _FIT.format(cls="IdealizedPresetDevice"),
)
def idealized() -> ConstantStepDevice:
    """Symmetric constant-step device with 10 000 states on ±1 (dw_min 2·10⁻⁴), 30 % d2d and c2c."""
    return ConstantStepDevice(
        dw_min=0.0002, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0, up_down_dtod=0.0,
        w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3,
    )


@_preset(
    "gokmen_vlasov",
    "Gokmen & Vlasov 2016, 'Acceleration of deep neural network training with resistive cross-point "
    "devices: design considerations', Front. Neurosci. 10:333 (RPU specifications: ~1000 states, 30 % "
    "d2d and c2c variation), here with 1200 states scaled to ±1; " + _FIT.format(cls="GokmenVlasovPresetDevice"),
)
def gokmen_vlasov() -> ConstantStepDevice:
    """Constant-step device with the RPU specifications: 1200 states on ±1 (dw_min 0.0016), 30 % d2d/c2c."""
    return ConstantStepDevice(
        dw_min=0.0016, dw_min_dtod=0.3, dw_min_std=0.3, up_down=0.0, up_down_dtod=0.01,
        w_max=1.0, w_min=-1.0, w_max_dtod=0.3, w_min_dtod=0.3,
    )


@_preset(
    "pcm",
    "Ge2Sb2Te5 PCM (Nandakumar et al. 2020, 'Mixed-precision deep learning based on computational "
    "memory', Front. Neurosci. 14:406); exponential-step fit with PCM-like c2c noise, uni-directional use "
    "(pair it in a one-sided unit cell), " + _FIT.format(cls="PCMPresetDevice"),
)
def pcm() -> ExpStepDevice:
    """PCM: w ∈ [0, 2], large first steps shrinking with w, c2c std 0.6·(0.042 + |Δw| + 0.108·|w|), reset noise.

    Meant to receive SET (up) pulses only, in a one-sided pair with refresh (compounds/); the model's
    down branch is kept for completeness.
    """
    return ExpStepDevice(
        dw_min=0.01, up_down=0.0, w_max=2.0, w_min=0.0,
        a=-1.0, b=0.0, gamma_up=2.5, gamma_down=2.5, A_up=-27.235, A_down=-2.235,
        dw_min_dtod=0.2, up_down_dtod=0.05, w_max_dtod=0.1, w_min_dtod=0.0,
        dw_min_std=0.6, dw_min_std_add=0.042, dw_min_std_slope=0.108, write_noise_std=0.0,
        reset=0.01, reset_dtod=0.02,
    )


_GONG_RASCH = (
    "Gong, Rasch et al. 2022, 'Deep learning acceleration in 14nm CMOS compatible ReRAM array: device, "
    "material and algorithm co-optimization', IEDM"
)


@_preset(
    "reram_array_om",
    _GONG_RASCH + " ('optimized material' array, compliance-adjusted range); soft-bounds-reference fit, "
    + _FIT.format(cls="ReRamArrayOMPresetDevice"),
)
def reram_array_om() -> SoftBoundsReferenceDevice:
    """ReRAM array, optimised material: ~21 states on ±1, log-normal 78 % step d2d, symmetry point subtracted.

    The measured array had 13.5 % corrupt devices; ``corrupt_devices_prob`` is 0 here (set it to
    0.1348 to include them). ``reference_std`` 0.05 assumes a 5 % reference programming error.
    """
    return SoftBoundsReferenceDevice(
        enforce_consistency=True, dw_min_dtod_log_normal=True,
        dw_min=0.0949, up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False,
        dw_min_dtod=0.7829, up_down_dtod=0.01, w_max_dtod=0.3499, w_min_dtod=0.5695,
        dw_min_std=0.4158, write_noise_std=1.4113,
        corrupt_devices_range=0.01, corrupt_devices_prob=0.0,
        subtract_symmetry_point=True, reference_std=0.05,
    )


@_preset(
    "reram_array_hfo2",
    _GONG_RASCH + " ('baseline HfO2' array, compliance-adjusted range); soft-bounds-reference fit, "
    + _FIT.format(cls="ReRamArrayHfO2PresetDevice"),
)
def reram_array_hfo2() -> SoftBoundsReferenceDevice:
    """ReRAM array, baseline HfO2: ~4 states on ±1 (dw_min 0.46), log-normal 71 % step d2d, symmetry point subtracted.

    The measured array had 9.8 % corrupt devices; ``corrupt_devices_prob`` is 0 here (0.0977 to include).
    """
    return SoftBoundsReferenceDevice(
        enforce_consistency=True, dw_min_dtod_log_normal=True,
        dw_min=0.4622, up_down=0.0, w_max=1.0, w_min=-1.0, mult_noise=False,
        dw_min_dtod=0.7125, up_down_dtod=0.01, w_max_dtod=0.4295, w_min_dtod=0.5990,
        dw_min_std=0.2174, write_noise_std=0.5841,
        corrupt_devices_range=0.01, corrupt_devices_prob=0.0,
        subtract_symmetry_point=True, reference_std=0.05,
    )
