"""Decay, diffusion, reset, write noise and set_weights (spec §1.8 equations)."""

from __future__ import annotations

import math

import pytest
import torch

import analogkit.devices as D

N = 50_000  # tolerances: 5 standard errors of a mean (s/√N) or std (s/√(2N)) over N elements


def test_device_decay_is_geometric_towards_reset_bias() -> None:
    dev = D.ConstantStepDevice(lifetime=10.0, reset=0.1, reset_dtod=0.0, w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((5,), gen, dtype=torch.float64)
    w0 = torch.linspace(-0.9, 0.9, 5, dtype=torch.float64)
    dev.set_weights(state, w0, gen)
    dev.decay(state, gen, n=3)
    torch.testing.assert_close(state.w, 0.1 + (w0 - 0.1) * 0.9**3)
    dev.decay(state, gen)
    torch.testing.assert_close(state.w, 0.1 + (w0 - 0.1) * 0.9**4)


def test_device_decay_is_off_without_lifetime() -> None:
    dev = D.ConstantStepDevice()
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((5,), gen)
    dev.set_weights(state, torch.full((5,), 0.3), gen)
    dev.decay(state, gen, n=100)
    assert torch.all(state.w == 0.3)
    with pytest.raises(ValueError, match="n"):
        D.ConstantStepDevice(lifetime=10.0).decay(D.ConstantStepDevice(lifetime=10.0).build_state((2,), gen), gen, n=-1)


def test_device_diffusion_adds_gaussian_noise_of_the_rate() -> None:
    dev = D.ConstantStepDevice(diffusion=0.01, diffusion_dtod=0.0, w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0)
    gen = torch.Generator().manual_seed(1)
    state = dev.build_state((N,), gen, dtype=torch.float64)
    dev.diffuse(state, gen)
    assert abs(state.w.mean().item()) <= 5 * 0.01 / math.sqrt(N)
    assert abs(state.w.std().item() - 0.01) <= 5 * 0.01 / math.sqrt(2 * N)


def test_device_reset_only_masked_elements() -> None:
    dev = D.SoftBoundsDevice(reset=0.2, reset_dtod=0.0, reset_std=0.05, write_noise_std=3.0, w_max_dtod=0.0, w_min_dtod=0.0)
    gen = torch.Generator().manual_seed(2)
    state = dev.build_state((N,), gen, dtype=torch.float64)
    dev.set_weights(state, torch.full((N,), -0.3, dtype=torch.float64), gen)
    noise_before = state.write_noise.clone()
    mask = torch.zeros(N, dtype=torch.bool)
    mask[: N // 2] = True
    dev.reset_devices(state, mask, gen)
    assert torch.all(state.w[~mask] == -0.3)
    assert torch.equal(state.write_noise[~mask], noise_before[~mask])
    reset = state.w[mask]
    n = reset.numel()
    assert abs(reset.mean().item() - 0.2) <= 5 * 0.05 / math.sqrt(n)
    assert abs(reset.std().item() - 0.05) <= 5 * 0.05 / math.sqrt(2 * n)


def test_device_write_noise_is_persistent_and_redrawn_on_touch() -> None:
    dev = D.SoftBoundsDevice(dw_min=0.01, write_noise_std=3.0)
    gen = torch.Generator().manual_seed(3)
    state = dev.build_state((N,), gen, dtype=torch.float64)
    read1 = dev.apparent_weight(state, gen)
    read2 = dev.apparent_weight(state, gen)
    assert torch.equal(read1, read2)  # not read noise: the same until the element is touched
    offset = read1 - state.w
    assert abs(offset.std().item() - 0.03) <= 5 * 0.03 / math.sqrt(2 * N)
    direction = torch.zeros(N, dtype=torch.int8)
    direction[: N // 2] = 1
    dev.pulse(state, direction, gen)
    new_offset = dev.apparent_weight(state, gen) - state.w
    assert torch.equal(new_offset[N // 2 :], offset[N // 2 :])
    assert (new_offset[: N // 2] != offset[: N // 2]).all()


def test_device_without_write_noise_reads_hidden_weight() -> None:
    dev = D.ConstantStepDevice()
    state = dev.build_state((3,), torch.Generator().manual_seed(0))
    assert dev.apparent_weight(state) is state.w
    assert "write_noise" not in state.extra


def test_device_set_weights_clips_to_bounds() -> None:
    dev = D.ConstantStepDevice(w_max=0.5, w_min=-0.5, w_max_dtod=0.0, w_min_dtod=0.0)
    gen = torch.Generator().manual_seed(0)
    state = dev.build_state((3,), gen)
    dev.set_weights(state, torch.tensor([-2.0, 0.1, 2.0]), gen)
    torch.testing.assert_close(state.w, torch.tensor([-0.5, 0.1, 0.5]))


def test_device_generator_device_and_dtype() -> None:
    dev = D.LinearStepDevice(lifetime=10.0, diffusion=0.1)
    state = dev.build_state((2, 3), torch.Generator().manual_seed(0), dtype=torch.float64)
    for name, t in state:
        assert t.dtype == torch.float64 and t.device.type == "cpu" and t.shape == (2, 3), name
    with pytest.raises(TypeError, match="generator"):
        dev.build_state((2, 3), 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="floating"):
        dev.build_state((2, 3), torch.Generator(), dtype=torch.int32)
