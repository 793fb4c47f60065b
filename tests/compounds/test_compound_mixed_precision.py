"""Mixed precision: χ accumulates the update; integer multiples of ε move to the device, the rest stays."""

from __future__ import annotations

import torch

from analogkit.compounds import MixedPrecisionCompound, quantize_vectors
from analogkit.update import UpdateConfig
from compound_testkit import gen, ideal

CFG = UpdateConfig()


def test_integer_multiples_of_the_granularity_move_and_the_remainder_stays():
    mp = MixedPrecisionCompound(device=ideal(0.01))
    state = mp.build_state((3, 4), gen(0))
    g = gen(1)
    x, d = torch.randn(5, 4, generator=g), torch.randn(5, 3, generator=g)
    chi = -0.07 * d.t() @ x  # χ after one update with lr 0.07
    mp.pulsed_update_(state, x, d, 0.07, CFG, gen(2))
    n = torch.trunc(chi / 0.01)
    torch.testing.assert_close(state.devices[0].w, 0.01 * n, atol=1e-6, rtol=0)
    torch.testing.assert_close(state.chi, chi - 0.01 * n, atol=1e-6, rtol=0)
    assert bool((state.chi.abs() < 0.01).all())
    assert bool((state.chi * chi >= 0).all())  # truncation toward 0: the remainder keeps the sign
    # the remainder carries over: a second identical update moves trunc((r + χ)/ε)
    mp.pulsed_update_(state, x, d, 0.07, CFG, gen(3))
    total = 2 * chi
    torch.testing.assert_close(state.devices[0].w + state.chi, total, atol=1e-5, rtol=0)


def test_granularity_larger_than_the_step_gives_several_pulses_per_unit():
    mp = MixedPrecisionCompound(device=ideal(0.01), granularity=0.03)
    state = mp.build_state((1, 2), gen(0))
    mp.pulsed_update_(state, torch.tensor([[1.0, 1.0]]), torch.tensor([[-0.1]]), 1.0, CFG, gen(1))
    # χ = 0.1 → 3 units of 0.03 (each 3 pulses of 0.01), remainder 0.01
    torch.testing.assert_close(state.devices[0].w, torch.full((1, 2), 0.09))
    torch.testing.assert_close(state.chi, torch.full((1, 2), 0.01))


def test_transfer_period_and_rows():
    mp = MixedPrecisionCompound(device=ideal(0.01), transfer_every=4, n_rows_per_transfer=1)
    state = mp.build_state((3, 2), gen(0))
    x, d = torch.ones(2, 2), -torch.ones(2, 3)  # χ += 0.1·2 per update
    mp.pulsed_update_(state, x, d, 0.1, CFG, gen(1))  # 2 samples: no transfer yet
    assert torch.count_nonzero(state.devices[0].w) == 0
    mp.pulsed_update_(state, x, d, 0.1, CFG, gen(1))  # 4 samples: row 0
    torch.testing.assert_close(state.devices[0].w[0], torch.full((2,), 0.4))
    assert torch.count_nonzero(state.devices[0].w[1:]) == 0
    assert int(state.row_ptr) == 1


def test_quantisation_uses_the_vectors_absmax_and_given_levels():
    v = torch.tensor([[0.9, -0.31, 0.1, 0.0]])
    q = quantize_vectors(v, 4, stochastic=False, generator=None)  # 2 levels each side: step 0.45
    torch.testing.assert_close(q, torch.tensor([[0.9, -0.45, 0.0, 0.0]]))
    # stochastic rounding is unbiased: mean of 20000 draws within 5 standard errors (sd ≤ 0.5 step)
    many = quantize_vectors(v.expand(20000, 4).contiguous(), 4, stochastic=True, generator=gen(0))
    assert bool(((many.mean(0) - v[0]).abs() < 5 * 0.225 / 20000**0.5).all())
