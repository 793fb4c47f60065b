"""Compound devices and residual training algorithms: unit cells, Tiki-Taka (v1, v2), chopped TTv2,
AGAD and mixed precision — each usable wherever a pulsed device is (``TileConfig(device=...)``).

    from analogkit.compounds import build_config
    config = build_config("c-ttv2", "reram_sb")           # a TileConfig for on-chip training
    model = convert_to_analog(model, config); opt = AnalogSGD(model.parameters(), lr=0.1)

:data:`COMPOUNDS` registers the compound classes by ``kind``; :data:`ALGORITHM_PRESETS` one
zero-argument factory per algorithm × device preset (``"tiki-taka/reram_sb"``), each with a
``source``; :func:`list_presets` lists them.
"""

from analogkit.compounds.base import (
    COMPOUNDS,
    Compound,
    CompoundState,
    apply_counts_,
    granularity_of,
    read_columns,
    register_compound,
    update_array_,
)
from analogkit.compounds.vector import UPDATE_POLICIES, VectorUnitCell
from analogkit.compounds.reference import ReferenceUnitCell
from analogkit.compounds.one_sided import OneSidedUnitCell
from analogkit.compounds.transfer import TransferCompound
from analogkit.compounds.buffered import BufferedTransferCompound
from analogkit.compounds.chopped import ChoppedTransferCompound
from analogkit.compounds.dynamic import DynamicTransferCompound
from analogkit.compounds.mixed_precision import MixedPrecisionCompound, quantize_vectors
from analogkit.compounds.builder import ALGORITHMS, build_config, canonical_algorithm
from analogkit.compounds.presets import ALGORITHM_PRESETS, build_algorithm_preset, list_presets

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_PRESETS",
    "COMPOUNDS",
    "UPDATE_POLICIES",
    "BufferedTransferCompound",
    "ChoppedTransferCompound",
    "Compound",
    "CompoundState",
    "DynamicTransferCompound",
    "MixedPrecisionCompound",
    "OneSidedUnitCell",
    "ReferenceUnitCell",
    "TransferCompound",
    "VectorUnitCell",
    "apply_counts_",
    "build_algorithm_preset",
    "build_config",
    "canonical_algorithm",
    "granularity_of",
    "list_presets",
    "quantize_vectors",
    "read_columns",
    "register_compound",
    "update_array_",
]
