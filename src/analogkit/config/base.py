"""Shared machinery for configuration dataclasses: validation helpers and plain-data round-trip.

Every config in analogkit is a frozen-free ``@dataclass`` that subclasses :class:`ConfigBase`.
It validates itself in ``__post_init__`` (by calling :meth:`ConfigBase.validate`) and turns
into plain data (``dict`` of str/int/float/bool/None/list/dict) with :meth:`ConfigBase.to_dict`,
so configs can be written to YAML/JSON and stored in checkpoints that load with
``torch.load(..., weights_only=True)``.

Nested configs are rebuilt from their type hints; a field typed as a union of config classes
(for example several device kinds) is stored with a ``"kind"`` key naming the registered class.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, TypeVar, Union

import yaml

T = TypeVar("T", bound="ConfigBase")

# Registry of every ConfigBase subclass by its ``kind`` name, used to rebuild union-typed fields.
_CONFIG_KINDS: dict[str, type["ConfigBase"]] = {}


def _qualname(obj: "ConfigBase") -> str:
    return type(obj).__name__


class ConfigBase:
    """Mixin for config dataclasses: validation hooks, equality by value, plain-data round-trip.

    Subclasses are dataclasses; they override :meth:`validate` and call the ``check_*``
    helpers, which raise ``ValueError("Class.field: value is not allowed; use ...")``.
    A subclass may set the class attribute ``kind`` (a short snake_case name) to be
    serialisable inside union-typed fields.
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("kind", "")
        if name:
            _CONFIG_KINDS[name] = cls

    def __post_init__(self) -> None:
        self.validate()

    # -- validation -----------------------------------------------------------------
    def validate(self) -> None:
        """Check every field; raise ``ValueError`` naming the field, the value and what is allowed."""

    def _fail(self, field: str, value: Any, allowed: str) -> None:
        raise ValueError(f"{_qualname(self)}.{field}: {value!r} is not allowed; {allowed}")

    def check_range(
        self,
        field: str,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        hi_open: bool = False,
        allowed: str | None = None,
    ) -> None:
        """Require ``lo <= value <= hi`` (open ends if ``lo_open``/``hi_open``); finite numbers only."""
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self._fail(field, value, allowed or f"use a finite number{_range_text(lo, hi, lo_open, hi_open)}")
        bad = (
            (lo is not None and (value <= lo if lo_open else value < lo))
            or (hi is not None and (value >= hi if hi_open else value > hi))
        )
        if bad:
            self._fail(field, value, allowed or f"use a number{_range_text(lo, hi, lo_open, hi_open)}")

    def check_int(self, field: str, lo: int | None = None, hi: int | None = None, allowed: str | None = None) -> None:
        """Require an integer (not bool) within ``[lo, hi]``."""
        value = getattr(self, field)
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(field, value, allowed or f"use an integer{_range_text(lo, hi, False, False)}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            self._fail(field, value, allowed or f"use an integer{_range_text(lo, hi, False, False)}")

    def check_choice(self, field: str, choices: Iterable[str]) -> None:
        """Require one of ``choices`` (strings)."""
        value = getattr(self, field)
        choices = list(choices)
        if value not in choices:
            self._fail(field, value, "use one of " + ", ".join(repr(c) for c in choices))

    def check_bool(self, field: str) -> None:
        value = getattr(self, field)
        if not isinstance(value, bool):
            self._fail(field, value, "use true or false")

    def check_type(self, field: str, types: type | tuple[type, ...], allowed: str) -> None:
        value = getattr(self, field)
        if not isinstance(value, types):
            self._fail(field, value, allowed)

    # -- plain data -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain data (nested dicts, lists and scalars)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _to_plain(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        """Build the config from plain data; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a mapping of fields, got {type(data).__name__}")
        data = dict(data)
        data.pop("kind", None)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(
                f"{cls.__name__}: unknown field(s) {', '.join(unknown)}; "
                f"known fields are {', '.join(sorted(fields))}"
            )
        hints = typing.get_type_hints(cls)
        kwargs = {name: _from_plain(hints.get(name, Any), value, f"{cls.__name__}.{name}") for name, value in data.items()}
        return cls(**kwargs)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls: type[T], text: str) -> T:
        return cls.from_dict(yaml.safe_load(text) or {})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        """Write the config to ``.yaml``/``.yml`` or ``.json`` (chosen by suffix)."""
        path = Path(path)
        text = self.to_json() if path.suffix == ".json" else self.to_yaml()
        path.write_text(text)

    @classmethod
    def load(cls: type[T], path: str | Path) -> T:
        path = Path(path)
        text = path.read_text()
        return cls.from_json(text) if path.suffix == ".json" else cls.from_yaml(text)

    def replace(self: T, **changes: Any) -> T:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def diff(self, other: "ConfigBase", prefix: str = "") -> list[str]:
        """List ``path: mine vs theirs`` for every leaf that differs between two configs."""
        return _diff(self.to_dict(), other.to_dict(), prefix)


def _range_text(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi}"
    return ""


def _to_plain(value: Any) -> Any:
    if isinstance(value, ConfigBase):
        data = value.to_dict()
        if value.kind:
            data = {"kind": value.kind, **data}
        return data
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        config_types = [a for a in args if isinstance(a, type) and issubclass(a, ConfigBase)]
        if isinstance(value, dict) and config_types:
            kind = value.get("kind")
            if kind is not None:
                if kind not in _CONFIG_KINDS:
                    raise ValueError(f"{where}: unknown kind {kind!r}; use one of {', '.join(sorted(_CONFIG_KINDS))}")
                return _CONFIG_KINDS[kind].from_dict(value)
            if len(config_types) == 1:
                return config_types[0].from_dict(value)
            raise ValueError(f"{where}: a 'kind' key is needed to choose among {[c.__name__ for c in config_types]}")
        return value
    if isinstance(hint, type) and issubclass(hint, ConfigBase):
        if isinstance(value, dict):
            kind = value.get("kind")
            if kind is not None and kind in _CONFIG_KINDS and _CONFIG_KINDS[kind] is not hint:
                return _CONFIG_KINDS[kind].from_dict(value)
            return hint.from_dict(value)
        if isinstance(value, hint):
            return value
        raise ValueError(f"{where}: expected a mapping for {hint.__name__}, got {value!r}")
    if origin in (list, tuple) and args and isinstance(value, list):
        inner = args[0]
        converted = [_from_plain(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(converted) if origin is tuple else converted
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _diff(a: Any, b: Any, prefix: str) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += _diff(a.get(key, "<missing>"), b.get(key, "<missing>"), path)
        return out
    return [] if a == b else [f"{prefix}: {a!r} vs {b!r}"]


class Registry:
    """A name → object registry (devices, noise models, presets). Names are short snake_case.

    >>> r = Registry("device"); r.register("ideal")(object) and sorted(r)
    ['ideal']
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        def deco(obj: Any) -> Any:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: Any) -> None:
        self.register(name)(obj)

    def get(self, name: str) -> Any:
        if name not in self._items:
            raise ValueError(f"unknown {self.what} {name!r}; use one of {', '.join(sorted(self._items))}")
        return self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[tuple[str, Any]]:
        return sorted(self._items.items())
