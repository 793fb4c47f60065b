"""DeviceState: attribute access to extras, state_dict round trips, reproducibility, no global RNG."""

from __future__ import annotations

import pytest
import torch

import analogkit.devices as D
from device_testkit import small_bounded_config


def test_device_state_extras_and_errors() -> None:
    dev = D.SoftBoundsReferenceDevice(lifetime=5.0)
    state = dev.build_state((2, 2), torch.Generator().manual_seed(0))
    assert state.reference is state.extra["reference"]
    assert state.names()[:5] == ["w", "dw_up", "dw_down", "w_max", "w_min"]
    assert {"reset_bias", "decay_scale", "reference"} <= set(state.names())
    with pytest.raises(AttributeError, match="no tensor 'gamma'"):
        state.gamma
    with pytest.raises(AttributeError, match="extra"):
        state.gamma = torch.zeros(2, 2)
    assert "shape=(2, 2)" in repr(state)


def test_device_state_dict_round_trip_and_mismatch() -> None:
    dev = D.PowStepReferenceDevice(subtract_symmetry_point=True)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((3, 4), gen)
    dev.pulse_n(state, torch.randint(-5, 6, (3, 4), generator=gen), gen)
    sd = state.state_dict()
    other = dev.build_state((3, 4), torch.Generator().manual_seed(1))
    other.load_state_dict(sd)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in sd.items())
    copy = D.DeviceState.from_state_dict(sd)
    copy.w.add_(1.0)
    assert not torch.equal(copy.w, state.w)  # from_state_dict copies
    with pytest.raises(ValueError, match="missing"):
        other.load_state_dict({k: v for k, v in sd.items() if k != "reference"})
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict({k: v[:1] for k, v in sd.items()})


def test_device_state_gather_and_narrow_are_views_where_promised() -> None:
    dev = D.ConstantStepDevice()
    state = dev.build_state((4, 5), torch.Generator().manual_seed(0))
    sub = state.gather(torch.tensor([3, 7, 11]))
    assert sub.shape == (3,)
    view = sub.narrow(2)
    view.w.fill_(0.5)
    assert torch.equal(sub.w, torch.tensor([0.5, 0.5, sub.w[2].item()]))
    assert torch.all(state.w == 0)  # gather copies


@pytest.mark.parametrize("kind", list(D.DEVICES))
def test_device_same_seed_same_state(kind: str) -> None:
    dev = small_bounded_config(kind)

    def run(seed: int) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        state = dev.build_state((6, 7), gen)
        counts = torch.randint(-9, 10, (6, 7), generator=gen)
        dev.pulse_n(state, counts, gen)
        dev.pulse(state, counts.sign().to(torch.int8), gen)
        dev.decay(state, gen)
        dev.diffuse(state, gen)
        dev.reset_devices(state, counts > 5, gen)
        return state.state_dict()

    a, b, c = run(123), run(123), run(124)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_device_never_touches_global_rng() -> None:
    torch.manual_seed(0)
    before = torch.random.get_rng_state().clone()
    for kind in D.DEVICES:
        dev = small_bounded_config(kind)
        gen = torch.Generator().manual_seed(1)
        state = dev.build_state((4, 4), gen)
        dev.pulse_n(state, torch.full((4, 4), 3), gen)
        dev.pulse(state, torch.ones(4, 4, dtype=torch.int8), gen)
        dev.decay(state, gen)
        dev.diffuse(state, gen)
        dev.reset_devices(state, None, gen)
        dev.symmetry_point(state)
    for name in D.DEVICE_PRESETS:
        D.pulse_response(D.build_preset(name), n_pulses=3, n_cycles=1, n_traces=2)
        D.step_curve(D.build_preset(name), n_points=5)
    assert torch.equal(torch.random.get_rng_state(), before)
