"""AnalogTile: the crossbar(s) that hold one layer's weight, with their periphery and randomness."""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import Tensor, nn

from analogkit.config.tile import TileConfig
from analogkit.inference.base import ProgrammedState
from analogkit.inference.clipping import clip_weights_
from analogkit.inference.compensation import global_drift_factor, per_column_drift_factor
from analogkit.inference.modifiers import apply_weight_modifier
from analogkit.devices.base import DeviceState
from analogkit.periphery.input_range import InputRange
from analogkit.periphery.mvm import AnalogMVMFunction, TileGrid, analog_mvm
from analogkit.random import make_generator
from analogkit.tile.pulsed import PulsedMVMFunction

_CHECKPOINT_FORMAT = 1
_PROGRAMMED_TENSORS = ("programmed_weight", "program_scale", "drift_reference", "drift_alpha")


class TileRef:
    """The weak reference from a tile's update handle (``handle._analog_tile``) back to its tile:
    call it for the tile (None once the tile is gone). It pickles and copies as an empty reference,
    and the tile's ``__setstate__`` points the copied handle at the copied tile, so a whole model
    can be saved with ``torch.save(model)`` (a ``weakref.ref`` cannot be pickled)."""

    __slots__ = ("_ref",)

    def __init__(self, tile: "AnalogTile | None" = None) -> None:
        self._ref = weakref.ref(tile) if tile is not None else None

    def __call__(self) -> "AnalogTile | None":
        return self._ref() if self._ref is not None else None

    def __reduce__(self) -> tuple[type, tuple]:
        return (TileRef, ())


class ConfigMismatchError(ValueError):
    """A checkpoint was saved with a different TileConfig than the model it is loaded into."""


class AnalogTile(nn.Module):
    """The physical tiles of one layer: mapping, periphery, learned output scales and a generator.

    Three ways a tile computes, chosen by its config and state:

    - **Weight as a parameter** (no ``device``; inference and hardware-aware training): the layer
      passes its ``nn.Parameter`` (G, out, in); every torch optimizer trains it through
      straight-through gradients. Per training mini-batch the parameter is clipped (``clip``) and
      perturbed (``modifier``) before the read.
    - **Pulsed** (a ``device``): the weight is device state held in this tile's buffers; the
      backward pass records (x, d) and :class:`~analogkit.optim.AnalogSGD` turns them into pulses.
    - **Programmed** (after :meth:`program`): in eval mode the programmed/drifted conductances are
      read instead, with drift compensation.

    Forward (per group)::

        x ← clip(x, ±r) / r        learned input range r, if enabled (else dynamic noise management)
        [x, 1] and [W, b]          if the bias is analog (an extra crossbar column)
        m = max|W| / ω             weight scaling (per layer or per output column), digital
        y = MVM(x, W/m) · m · r    through the forward periphery of every tile (see periphery.mvm)
        y = y · γ + b              learned output scales γ and digital bias

    Every random draw (noise, stochastic rounding, pulses) comes from ``self.generator``, seeded
    at construction (see :func:`analogkit.manual_seed`) and saved in the state dict.
    """

    def __init__(
        self,
        out_size: int,
        in_size: int,
        config: TileConfig | None = None,
        *,
        groups: int = 1,
        bias: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        config = TileConfig() if config is None else config
        if not isinstance(config, TileConfig):
            raise TypeError(f"config: expected a TileConfig, got {type(config).__name__}")
        for name, value in (("out_size", out_size), ("in_size", in_size), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AnalogTile.{name}: {value!r} is not allowed; use an integer >= 1")
        self.config = config
        self.out_size, self.in_size, self.groups = out_size, in_size, groups
        self.has_bias = bias
        self.analog_bias = bias and not config.mapping.digital_bias
        mapping = config.mapping
        self.grid = TileGrid.for_matrix(
            out_size, in_size + int(self.analog_bias), mapping.max_output_size, mapping.max_input_size
        )
        self.out_scales: nn.Parameter | None = None
        if mapping.learn_out_scaling:
            n = groups * out_size if mapping.out_scaling_columnwise else 1
            self.out_scales = nn.Parameter(torch.ones(n))
        self.register_buffer("_device_probe", torch.empty(0), persistent=False)
        self.generator = make_generator(seed)
        self._clear_programming()
        self.input_range: InputRange | None = None
        self._io_ranged = config.forward
        if config.input_range.enable:
            self.input_range = InputRange(config.input_range, groups=groups)
            # with a learned static range the DAC sees x/r directly: no dynamic noise management
            self._io_ranged = config.forward.replace(noise_management="none", inp_bound=1.0)
        self.update_handle: nn.Parameter | None = None
        self._device_names: list[str] = []
        # the device state built on the buffers, and its groups' views (see device_state)
        self._state_cache: tuple[list[Tensor], Any, Any, dict[int, Any]] | None = None
        self._pending: list[tuple[Tensor, Tensor]] = []
        if config.device is not None:
            self._init_pulsed()

    # -- on-chip (pulsed) training ------------------------------------------------------------
    @property
    def is_pulsed(self) -> bool:
        """Whether the weight is device state trained by pulses (the config has a device)."""
        return self.config.device is not None

    def _init_pulsed(self) -> None:
        mapping = self.config.mapping
        if not mapping.digital_bias:
            raise ValueError(
                "MappingConfig.digital_bias: False is not allowed with a pulsed device yet; "
                "use a digital bias for on-chip training"
            )
        if mapping.weight_scaling_omega > 0:
            raise ValueError(
                f"MappingConfig.weight_scaling_omega: {mapping.weight_scaling_omega} is not allowed with a "
                "pulsed device yet; use 0 (the device's own bounds set the weight range)"
            )
        state = self.config.device.build_state((self.groups, self.out_size, self.in_size), self.generator)
        for name, tensor in state.tensors().items():
            self.register_buffer(f"device_{name}", tensor)
        self._device_names = state.names()
        self.update_handle = nn.Parameter(torch.empty(0))
        self.update_handle._analog_tile = TileRef(self)  # type: ignore[attr-defined]

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        return {**state, "_state_cache": None}  # (rebuilt on the copy's own buffers)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # deepcopy/unpickling: the copied update handle must point at this copy, not the original
        super().__setstate__(state)
        if self.update_handle is not None:
            self.update_handle._analog_tile = TileRef(self)  # type: ignore[attr-defined]

    @property
    def device_state(self) -> Any:
        """The devices' state built on this tile's buffers (views; writes go through).

        A device (or compound of devices) may define ``state_from_tensors(dict)`` to rebuild its
        own state type from the named tensors of ``build_state(...).tensors()``; plain devices
        use :class:`DeviceState`.
        """
        return self._cached_state()[0]

    def _cached_state(self) -> tuple[Any, dict[int, Any]]:
        """(device state, {group: its views}), rebuilt only when a buffer was replaced (``.to()``,
        assignment) or the device changed: building a compound's state costs tens of µs per call,
        a noticeable part of a small training step."""
        buffers = self._buffers
        tensors = [buffers[f"device_{name}"] for name in self._device_names]
        device = self.config.device
        cache = self._state_cache
        if (cache is not None and cache[1] is device and len(cache[0]) == len(tensors)
                and all(a is b for a, b in zip(cache[0], tensors))):
            return cache[2], cache[3]
        t = dict(zip(self._device_names, tensors))
        rebuild = getattr(device, "state_from_tensors", None)
        if rebuild is not None:
            state = rebuild(t)
        else:
            core = ("w", "dw_up", "dw_down", "w_max", "w_min")
            state = DeviceState(**{k: t[k] for k in core}, extra={k: v for k, v in t.items() if k not in core})
        self._state_cache = (tensors, device, state, {})
        return state, self._state_cache[3]

    def _group_state(self, g: int) -> Any:
        """Views of group ``g`` of the device state (cached with it)."""
        state, groups = self._cached_state()
        sub = groups.get(g)
        if sub is None:
            sub = state.select_group(g) if hasattr(state, "select_group") else state._map(lambda t: t[g])
            groups[g] = sub
        return sub

    @torch.no_grad()
    def set_weights(self, weight: Tensor) -> None:
        """Write ``weight`` (G, out, in) into the devices' hidden weights (clipped to their bounds)."""
        if not self.is_pulsed:
            raise RuntimeError("set_weights: only pulsed tiles hold their weight as device state")
        self.config.device.set_weights(self.device_state, weight.to(self.device_w), self.generator)

    def record_update(self, x: Tensor, d: Tensor) -> None:
        """Keep one (inputs, output gradients) pair for the next pulsed update (called by backward)."""
        self._pending.append((x.detach(), d.detach()))

    @property
    def has_pending_update(self) -> bool:
        return bool(self._pending)

    @torch.no_grad()
    def apply_update(self, lr: float) -> None:
        """Turn the recorded (x, d) pairs into pulses (W ← W − lr·d xᵀ on the devices), in order,
        then apply the devices' per-batch decay and diffusion (if configured)."""
        from analogkit.update.engine import pulsed_update_

        if not self.is_pulsed:
            raise RuntimeError("apply_update: this tile has no pulsed device")
        device, cfg = self.config.device, self.config.update
        # a compound (unit cell, transfer algorithm, mixed precision) brings its own update
        update = getattr(device, "pulsed_update_", None)
        if update is None:
            def update(state, x, d, lr, cfg, generator):  # noqa: ANN001, ANN202
                return pulsed_update_(device, state, x, d, lr, cfg, generator)
        state = self.device_state
        pending, self._pending = self._pending, []
        for x, d in pending:
            for g in range(self.groups):  # groups are separate matrices (usually 1)
                update(self._group_state(g), x[:, g].contiguous(), d[:, g].contiguous(), lr, cfg, self.generator)
        post = getattr(device, "post_update_", None)
        if post is not None:
            post(state, self.generator)
        else:
            if getattr(device, "lifetime", 0) > 0:
                device.decay(state, self.generator)
            if getattr(device, "diffusion", 0) > 0:
                device.diffuse(state, self.generator)

    def discard_update(self) -> None:
        """Drop recorded (x, d) pairs without applying them."""
        self._pending = []

    # -- compute ----------------------------------------------------------------------------
    def forward(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        """``x``: (N, G, in), ``weight``: (G, out, in), ``bias``: (G·out,) or None → (N, G, out)."""
        cfg = self.config
        g, out = self.groups, self.out_size
        io_fwd, r = cfg.forward, None
        if self.input_range is not None:
            x = self.input_range(x)  # clip to the learned range ±r (range gradient inside)
            r = self.input_range.range().to(x.dtype)
            r = r.reshape(()) if g == 1 else r.reshape(1, g, 1)
            x = x / r
            io_fwd = self._io_ranged
        if self.analog_bias and bias is not None:
            x = torch.cat([x, x.new_ones(x.shape[0], g, 1) / (1.0 if r is None else r)], dim=-1)
        if self.programmed_weight is not None and not self.training:
            # inference on the programmed (and drifted) conductances, with drift compensation
            y = AnalogMVMFunction.apply(x, self.programmed_weight, self.grid, io_fwd, cfg.backward, self.generator)
            if self.drift_alpha is not None:
                y = y * self.drift_alpha.reshape(1, g, -1) if self.drift_alpha.numel() > 1 else y * self.drift_alpha
            scale = self.program_scale
        elif self.is_pulsed:
            w = self.config.device.apparent_weight(self.device_state)
            if self.training and torch.is_grad_enabled():
                y = PulsedMVMFunction.apply(x, self.update_handle, w, self.grid, io_fwd, cfg.backward, self.generator, self)
            else:
                y = AnalogMVMFunction.apply(x, w, self.grid, io_fwd, cfg.backward, self.generator)
            scale = None
        else:
            if self.training and cfg.clip.type != "none":
                clip_weights_(weight, cfg.clip)  # in place on the parameter: as after each optimizer step
            w = self._crossbar_weight(weight, bias)
            scale = self.mapping_scales(w)
            if scale is not None:
                w = w / scale
            w = apply_weight_modifier(w, cfg.modifier, self.generator, training=self.training)
            y = AnalogMVMFunction.apply(x, w, self.grid, io_fwd, cfg.backward, self.generator)
        if scale is not None:  # per layer (1, 1, 1) or per column (G, out, 1)
            y = y * (scale.reshape(1, g, -1) if scale.numel() > 1 else scale.reshape(()))
        if r is not None:
            y = y * r
        if self.out_scales is not None:
            y = y * self.out_scales.reshape(1, g, -1) if self.out_scales.numel() > 1 else y * self.out_scales
        if bias is not None and not self.analog_bias:
            y = y + bias.reshape(1, g, out)
        return y

    def _crossbar_weight(self, weight: Tensor, bias: Tensor | None) -> Tensor:
        """The matrix on the crossbar before weight scaling: (G, out, in [+1 analog-bias column])."""
        if self.analog_bias and bias is not None:
            return torch.cat([weight, bias.reshape(self.groups, self.out_size, 1)], dim=-1)
        return weight

    def mapping_scales(self, weight: Tensor) -> Tensor | None:
        """Digital scales m with max|W/m| = ω (per layer: shape (1, 1, 1); per column: (G, out, 1)).

        Treated as constants for autograd (computed from the detached weight).
        """
        omega = self.config.mapping.weight_scaling_omega
        if omega <= 0:
            return None
        w = weight.detach().abs()
        if self.config.mapping.weight_scaling_columnwise:
            m = w.amax(dim=-1, keepdim=True)
        else:
            m = w.amax().reshape(1, 1, 1)
        return torch.where(m > 0, m / omega, torch.ones_like(m))

    # -- inference: programming, drift, compensation ---------------------------------------
    def _clear_programming(self) -> None:
        self.programmed_state: ProgrammedState | None = None
        self.programmed_weight: Tensor | None = None  # (G, out, in) on the crossbar, after noise
        self.program_scale: Tensor | None = None  # digital weight-scaling factors frozen at programming
        self.drift_reference: Tensor | None = None  # one-hot read right after programming
        self.drift_alpha: Tensor | None = None  # compensation factor applied in eval mode
        self.t_inference: float | None = None

    @property
    def is_programmed(self) -> bool:
        return self.programmed_state is not None

    @torch.no_grad()
    def program(self, weight: Tensor, bias: Tensor | None = None) -> None:
        """Program the crossbar with ``weight`` (and analog bias): conductances get programming noise.

        Stores the programmed state (conductances, drift exponents), the resulting weight used by
        eval-mode forward passes, and — if drift compensation is on — a reference read of the
        fresh chip through the forward periphery with one-hot inputs. The parameter is untouched.
        """
        w = self._crossbar_weight(weight, bias).detach()
        scale = self.mapping_scales(w)
        if scale is not None:
            w = w / scale
        model = self.config.noise_model
        state = model.program(w, self.generator)
        self.programmed_state = state
        self.program_scale = scale
        self.t_inference = 0.0
        self.programmed_weight = model.programmed_weights(state).to(w.dtype)
        self.drift_alpha = None
        self.drift_reference = None
        if self.config.drift_compensation != "none":
            self.drift_reference = self._reference_read(self.programmed_weight)
            self.drift_alpha = torch.ones((), dtype=w.dtype, device=w.device)

    @torch.no_grad()
    def drift(self, t_inference: float) -> None:
        """Conductances ``t_inference`` seconds after programming (drift and read noise), and the
        drift-compensation factor from a one-hot read compared with the reference."""
        if self.programmed_state is None:
            raise RuntimeError("drift: this tile has not been programmed; call program() first")
        if isinstance(t_inference, bool) or not isinstance(t_inference, (int, float)) or not t_inference >= 0:
            raise ValueError(f"drift: t_inference {t_inference!r} is not allowed; use seconds >= 0")
        model = self.config.noise_model
        w_t = model.drifted_weights(self.programmed_state, float(t_inference), self.generator)
        self.programmed_weight = w_t.to(self.programmed_weight.dtype)  # type: ignore[union-attr]
        self.t_inference = float(t_inference)
        if self.drift_reference is not None:
            now = self._reference_read(self.programmed_weight)
            if self.config.drift_compensation == "global":
                self.drift_alpha = global_drift_factor(self.drift_reference, now)
            else:  # one factor per output column of every group: (G·out,)
                n_in = now.shape[0]
                self.drift_alpha = per_column_drift_factor(self.drift_reference.reshape(n_in, -1), now.reshape(n_in, -1))

    def _reference_read(self, w: Tensor) -> Tensor:
        """Forward read of one-hot inputs through the periphery: (in, G, out)."""
        n_in = w.shape[-1]
        eye = torch.eye(n_in, dtype=w.dtype, device=w.device).unsqueeze(1).expand(n_in, self.groups, n_in)
        return analog_mvm(eye.contiguous(), w, self.grid, self.config.forward, self.generator)

    def clear_programming(self) -> None:
        """Forget the programmed state: eval-mode forward uses the trained parameter again."""
        self._clear_programming()

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def n_tiles(self) -> int:
        return self.groups * self.grid.n_tiles

    def manual_seed(self, seed: int) -> None:
        """Reseed this tile's generator."""
        self.generator.manual_seed(seed)

    def _apply(self, fn: Any, recurse: bool = True) -> "AnalogTile":  # type: ignore[override]
        super()._apply(fn, recurse)
        for name in _PROGRAMMED_TENSORS:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, fn(value))
        if self.programmed_state is not None:
            self.programmed_state = ProgrammedState.from_state_dict(
                {k: fn(v) if v.is_floating_point() else v.to(self._device_probe.device) for k, v in self.programmed_state.state_dict().items()}
            )
        device = self._device_probe.device
        if self.generator.device != device:
            # A generator cannot move between devices; continue deterministically from the old one.
            seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.generator.device).item())
            self.generator = torch.Generator(device=device).manual_seed(seed)
        return self

    def get_extra_state(self) -> dict[str, Any]:
        """Plain data only (loads with ``torch.load(weights_only=True)``): config, generator, format."""
        state: dict[str, Any] = {
            "format": _CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "generator_state": self.generator.get_state(),
            "generator_device": str(self.generator.device),
        }
        if self.programmed_state is not None:
            state["programmed"] = {
                "state": self.programmed_state.state_dict(),
                "t_inference": self.t_inference,
                **{name: getattr(self, name) for name in _PROGRAMMED_TENSORS},
            }
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        stored = TileConfig.from_dict(state["config"])
        if stored != self.config:
            differences = "; ".join(stored.diff(self.config))
            raise ConfigMismatchError(
                "checkpoint tile config differs from this model's (checkpoint vs model): "
                f"{differences}. Build the model with the checkpoint's config "
                "(analogkit.nn.tile_configs_in(state_dict) lists them) or convert it again."
            )
        self._clear_programming()
        programmed = state.get("programmed")
        if programmed is not None:
            device = self._device_probe.device
            self.programmed_state = ProgrammedState.from_state_dict(programmed["state"]).to(device)
            self.t_inference = programmed["t_inference"]
            for name in _PROGRAMMED_TENSORS:
                value = programmed[name]
                setattr(self, name, None if value is None else value.to(device))
        if state.get("generator_device") == str(self.generator.device):
            self.generator.set_state(state["generator_state"])
        else:
            cpu = torch.Generator()
            cpu.set_state(state["generator_state"])
            self.generator.manual_seed(int(torch.randint(0, 2**62, (1,), generator=cpu).item()))

    def extra_repr(self) -> str:
        g = self.grid
        groups = f"{self.groups} groups × " if self.groups > 1 else ""
        return f"out={self.out_size}, in={self.in_size}, tiles={groups}{g.rows}×{g.cols} of {g.co}×{g.ci}"
