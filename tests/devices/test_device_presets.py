"""Every device preset builds, pulses, round-trips its config and its state, and cites a source."""

from __future__ import annotations

import io

import pytest
import torch

import analogkit.devices as D

PRESETS = list(D.DEVICE_PRESETS)


def test_device_presets_expected_names() -> None:
    expected = {"reram_es", "reram_sb", "capacitor", "ecram", "ecram_mo", "idealized", "gokmen_vlasov", "pcm",
                "reram_array_om", "reram_array_hfo2"}
    assert expected <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_device_preset_builds_pulses_and_round_trips(name: str) -> None:
    factory = D.DEVICE_PRESETS.get(name)
    assert isinstance(factory.source, str) and len(factory.source) > 20
    dev = factory()
    assert isinstance(dev, D.Device) and dev.kind in D.DEVICES
    assert factory() == dev and factory() is not dev  # a fresh config every call

    # config round trips (dict, YAML, kind-tagged dict)
    assert type(dev).from_dict(dev.to_dict()) == dev
    assert type(dev).from_yaml(dev.to_yaml()) == dev
    assert D.device_from_dict(D.device_to_dict(dev)) == dev

    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((16, 8), gen)
    counts = torch.randint(-31, 32, (16, 8), generator=gen)
    dev.pulse_n(state, counts, gen)
    dev.pulse(state, counts.sign().to(torch.int8), gen)
    dev.decay(state, gen)
    dev.diffuse(state, gen)
    assert torch.all((state.w >= state.w_min) & (state.w <= state.w_max))
    assert torch.isfinite(dev.apparent_weight(state, gen)).all()

    # state round trip through torch.save with weights_only loading
    buf = io.BytesIO()
    torch.save(state.state_dict(), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    fresh = dev.build_state((16, 8), torch.Generator().manual_seed(99))
    fresh.load_state_dict(loaded)
    for key, t in state.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], t), key
    again = D.DeviceState.from_state_dict(loaded)
    assert again.names() == state.names()


def test_device_preset_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown device preset"):
        D.build_preset("flux_capacitor")


def test_device_preset_values_spot_check() -> None:
    """A few numbers from the cited fits (spec §1.11)."""
    es = D.build_preset("reram_es")
    assert (es.dw_min, es.dw_min_std, es.write_noise_std, es.w_max, es.w_min) == (0.00135, 5.0, 75.0, 1.0, -1.0)
    sb = D.build_preset("reram_sb")
    assert (sb.dw_min, sb.w_min, sb.w_max) == (0.002, -0.75, 1.25)
    cap = D.build_preset("capacitor")
    assert (cap.dw_min, cap.lifetime) == (0.005, 1e6)
    assert D.build_preset("ecram").dw_min == 0.002
    assert D.build_preset("ecram_mo").dw_min == pytest.approx(2.8e-4, rel=0.01)
    assert D.build_preset("idealized").dw_min == 2e-4 and D.build_preset("idealized").up_down == 0
    assert D.build_preset("gokmen_vlasov").dw_min == 0.0016
    pcm = D.build_preset("pcm")
    assert (pcm.w_min, pcm.w_max) == (0.0, 2.0)
    om, hfo2 = D.build_preset("reram_array_om"), D.build_preset("reram_array_hfo2")
    assert om.dw_min_dtod_log_normal and om.subtract_symmetry_point and om.dw_min == 0.0949
    assert hfo2.dw_min == 0.4622 and hfo2.reference_std == 0.05


def test_device_reram_array_symmetry_point_is_subtracted() -> None:
    """With the symmetry point subtracted, each element's read symmetry point is its reference error
    (reference_std = 0.05): |sp| < 5·0.05 everywhere, and its spread is ≈ 0.05."""
    dev = D.build_preset("reram_array_om")
    state = dev.build_state((4000,), torch.Generator().manual_seed(1))
    sp = dev.symmetry_point(state)
    inside = (sp > state.w_min) & (sp < state.w_max)
    assert inside.float().mean() > 0.99
    assert torch.all(sp[inside].abs() < 0.25)
    assert abs(sp[inside].std().item() - 0.05) < 0.01
