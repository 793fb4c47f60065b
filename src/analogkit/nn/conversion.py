"""Convert any PyTorch model to analog layers and back."""

from __future__ import annotations

import copy
import fnmatch
from collections import OrderedDict
from typing import Callable, Iterable, Union

from torch import nn

from analogkit.config.tile import TileConfig
from analogkit.nn.base import AnalogLayer, AnalogSequential
from analogkit.nn.conv import AnalogConv1d, AnalogConv2d, AnalogConv3d
from analogkit.nn.linear import AnalogLinear

#: digital module type → analog layer class used by :func:`convert_to_analog`.
CONVERSION_MAP: dict[type[nn.Module], type[AnalogLayer]] = {
    nn.Linear: AnalogLinear,
    nn.Conv1d: AnalogConv1d,
    nn.Conv2d: AnalogConv2d,
    nn.Conv3d: AnalogConv3d,
}

Exclude = Union[str, type, Callable[[str, nn.Module], bool]]


def _is_excluded(name: str, module: nn.Module, exclude: Iterable[Exclude]) -> bool:
    for rule in exclude:
        if isinstance(rule, str):
            if fnmatch.fnmatchcase(name, rule):
                return True
        elif isinstance(rule, type):
            if isinstance(module, rule):
                return True
        elif callable(rule):
            if rule(name, module):
                return True
        else:
            raise TypeError(f"convert_to_analog.exclude: {rule!r} is not allowed; use name patterns, module types or callables")
    return False


def convert_to_analog(
    model: nn.Module,
    config: TileConfig | None = None,
    *,
    exclude: Iterable[Exclude] = (),
    per_layer: Callable[[str, nn.Module], TileConfig | None] | None = None,
    inplace: bool = False,
) -> nn.Module:
    """Replace every ``nn.Linear`` and ``nn.Conv1d/2d/3d`` in ``model`` by its analog counterpart.

    - ``config``: the TileConfig for every converted layer (default ``TileConfig()``).
    - ``exclude``: layers to keep digital, as qualified-name patterns (``"fc3"``, ``"head.*"``),
      module types (``nn.Conv2d``) or predicates ``(name, module) -> bool``; an excluded module
      and everything inside it stay as they are.
    - ``per_layer(name, module)``: returns the TileConfig for that layer, or None to keep it
      digital; overrides ``config``.
    - ``inplace``: modify ``model`` itself instead of a deep copy.

    Weights are copied; a module shared in several places stays one shared analog layer. A root
    ``nn.Sequential`` becomes an :class:`AnalogSequential`. Tiles are seeded in module order.
    """
    if config is not None and not isinstance(config, TileConfig):
        raise TypeError(f"convert_to_analog.config: expected a TileConfig, got {type(config).__name__}")
    exclude = list(exclude)
    root = model if inplace else copy.deepcopy(model)
    converted: dict[int, nn.Module] = {}

    def convert(module: nn.Module, name: str) -> nn.Module:
        key = id(module)
        if key in converted:
            return converted[key]
        result = module
        if isinstance(module, AnalogLayer) or (name and _is_excluded(name, module, exclude)):
            pass
        elif type(module) in CONVERSION_MAP:
            layer_config = per_layer(name, module) if per_layer is not None else (config or TileConfig())
            if layer_config is not None:
                if not isinstance(layer_config, TileConfig):
                    raise TypeError(f"convert_to_analog.per_layer: returned {type(layer_config).__name__} for {name!r}; return a TileConfig or None")
                result = CONVERSION_MAP[type(module)].from_digital(module, layer_config)
        else:
            for child_name, child in list(module.named_children()):
                new = convert(child, f"{name}.{child_name}" if name else child_name)
                if new is not child:
                    setattr(module, child_name, new)
        converted[key] = result
        return result

    result = convert(root, "")
    if type(result) is nn.Sequential:
        seq = AnalogSequential(OrderedDict(result.named_children()))
        seq.train(result.training)
        result = seq
    return result


def convert_to_digital(model: nn.Module, *, inplace: bool = False) -> nn.Module:
    """Replace every analog layer by the equivalent ``nn.Linear``/``nn.Conv*d`` with the same weights."""
    root = model if inplace else copy.deepcopy(model)
    converted: dict[int, nn.Module] = {}

    def convert(module: nn.Module) -> nn.Module:
        key = id(module)
        if key in converted:
            return converted[key]
        if isinstance(module, AnalogLayer):
            result = module.to_digital()
        else:
            for child_name, child in list(module.named_children()):
                new = convert(child)
                if new is not child:
                    setattr(module, child_name, new)
            result = module
        converted[key] = result
        return result

    result = convert(root)
    if type(result) is AnalogSequential:
        seq = nn.Sequential(OrderedDict(result.named_children()))
        seq.train(result.training)
        result = seq
    return result
