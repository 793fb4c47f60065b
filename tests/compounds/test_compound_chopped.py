"""TTv2 buffer, c-TTv2 choppers and AGAD's dynamic reference."""

from __future__ import annotations

import math

import pytest
import torch

from analogkit.compounds import BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound
from analogkit.config import IOConfig
from analogkit.update import UpdateConfig
from compound_testkit import gen, ideal

FP = UpdateConfig(pulse_type="none")
PERFECT = IOConfig.perfect()


def _pair(**kw):
    return dict(unit_cell_devices=[ideal(0.01), ideal(0.01)], transfer_forward=PERFECT, **kw)


def test_buffer_takes_whole_pulses_and_keeps_the_rest():
    # A[:, 0] = a exactly (lr 1, x = e_0, d = -a); H = a/0.01; n = trunc(H) clipped to ±2
    comp = BufferedTransferCompound(**_pair(momentum=0.0, forget_buffer=False, scale_transfer_lr=False,
                                            n_reads_per_transfer=1, transfer_update=UpdateConfig(desired_bl=2)))
    state = comp.build_state((4, 3), gen(0))
    a_col = torch.tensor([0.0072, -0.0155, 0.0349, -0.0004])
    comp.pulsed_update_(state, torch.tensor([[1.0, 0.0, 0.0]]), -a_col[None], 1.0, FP, gen(1))
    h = a_col / 0.01
    n = torch.trunc(h).clamp(-2, 2)
    torch.testing.assert_close(state.devices[0].w[:, 0], a_col)
    torch.testing.assert_close(state.devices[1].w[:, 0], 0.01 * n)
    torch.testing.assert_close(state.buffer[:, 0], h - n)
    assert torch.count_nonzero(state.buffer[:, 1:]) == 0


def test_forget_buffer_keeps_momentum_times_the_buffer_where_it_fired():
    comp = BufferedTransferCompound(**_pair(momentum=0.25, forget_buffer=True, scale_transfer_lr=False))
    state = comp.build_state((2, 1), gen(0))
    comp.pulsed_update_(state, torch.tensor([[1.0]]), torch.tensor([[-0.023, -0.004]]), 1.0, FP, gen(1))
    torch.testing.assert_close(state.buffer[:, 0], torch.tensor([0.25 * 2.3, 0.4]))
    torch.testing.assert_close(state.devices[1].w[:, 0], torch.tensor([0.01, 0.0]))


@pytest.mark.parametrize("columns", [True, False])
def test_chopper_sign_is_undone_in_what_is_accumulated(columns):
    # choppers fixed at a pattern (no flips): A holds c·(gradient), the buffer the gradient itself
    comp = ChoppedTransferCompound(**_pair(in_chop_prob=0.0, out_chop_prob=0.0, scale_transfer_lr=False,
                                           transfer_lr=0.01, transfer_columns=columns, forget_buffer=False,
                                           n_reads_per_transfer=1, units_in_mbatch=True, transfer_every=1.0))
    out, n_in = 3, 4
    state = comp.build_state((out, n_in), gen(0))
    n_vec, n_other = (n_in, out) if columns else (out, n_in)
    pattern = torch.tensor([1.0, -1.0, -1.0, 1.0][:n_vec])
    other = torch.tensor([1.0, -1.0, 1.0, 1.0][:n_other])
    state.in_chopper.copy_(pattern)
    state.out_chopper.copy_(other)
    g = gen(1)
    x, d = torch.randn(5, n_in, generator=g), torch.randn(5, out, generator=g)
    grad = -(d.t() @ x)  # what plain SGD would add with lr 1
    comp.pulsed_update_(state, x, d, 1.0, FP, g)  # writes A, then reads vector 0
    chop = torch.outer(other, pattern) if columns else torch.outer(pattern, other)
    torch.testing.assert_close(state.devices[0].w, grad * chop, atol=1e-5, rtol=1e-5)
    for _ in range(n_vec):  # no more gradient: every vector read once more (vector 0 twice in all)
        comp.pulsed_update_(state, torch.zeros(1, n_in), torch.zeros(1, out), 1.0, FP, g)
    reads = torch.ones(n_vec)
    reads[0] = 2
    reads = reads[None, :] if columns else reads[:, None]
    # the buffer received c·read = gradient per read (scale 0.01/dw 0.01 = 1); C took whole pulses of it
    total = state.buffer + state.devices[1].w / 0.01
    torch.testing.assert_close(total, grad * reads, atol=1e-4, rtol=1e-4)


def test_random_chopper_flips_with_the_given_probability():
    # 200 columns read 25 times each: 5000 reads. Flips ~ Binomial(5000, 0.3): mean 1500, sd 32.4;
    # we allow 5 sd. Each chopper is ±1 and its sign history is in the state.
    p = 0.3
    comp = ChoppedTransferCompound(**_pair(in_chop_prob=p, units_in_mbatch=True, n_reads_per_transfer=200))
    state = comp.build_state((2, 200), gen(0))
    g = gen(1)
    flips = 0
    for _ in range(25):
        before = state.in_chopper.clone()
        comp.pulsed_update_(state, torch.zeros(1, 200), torch.zeros(1, 2), 0.1, FP, g)
        flips += int((state.in_chopper != before).sum())
    assert set(state.in_chopper.unique().tolist()) <= {-1.0, 1.0}
    mean, sd = 5000 * p, math.sqrt(5000 * p * (1 - p))
    assert abs(flips - mean) < 5 * sd, flips
    assert int(state.sweep_count) == 25


def test_regular_chopper_flips_every_period():
    comp = ChoppedTransferCompound(**_pair(in_chop_prob=0.25, in_chop_random=False, units_in_mbatch=True,
                                           n_reads_per_transfer=3))
    state = comp.build_state((2, 3), gen(0))
    history = []
    for _ in range(12):
        comp.pulsed_update_(state, torch.zeros(1, 3), torch.zeros(1, 2), 0.1, FP, gen(1))
        history.append(int(state.in_chopper[0]))
    # period P = 4 sweeps: flips in sweeps 3, 7, 11 (counting from 0)
    assert history == [1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1]


def test_out_chopper_flips_after_full_sweeps_only():
    comp = ChoppedTransferCompound(**_pair(in_chop_prob=0.0, out_chop_prob=1.0, units_in_mbatch=True))
    state = comp.build_state((3, 2), gen(0))
    comp.pulsed_update_(state, torch.zeros(1, 2), torch.zeros(1, 3), 0.1, FP, gen(1))  # reads column 0
    assert bool((state.out_chopper == 1).all())
    comp.pulsed_update_(state, torch.zeros(1, 2), torch.zeros(1, 3), 0.1, FP, gen(1))  # column 1: sweep ends
    assert bool((state.out_chopper == -1).all())


def test_chopped_write_uses_the_chopper_signs_through_the_update():
    comp = ChoppedTransferCompound(**_pair(in_chop_prob=0.0, transfer_every=0.0))
    state = comp.build_state((2, 2), gen(0))
    state.in_chopper.copy_(torch.tensor([1.0, -1.0]))
    comp.pulsed_update_(state, torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.0]]), 1.0, FP, gen(1))
    # fast lr is fast_lr (1.0) without scaling: A = -(d)(c ⊙ x)ᵀ
    torch.testing.assert_close(state.devices[0].w, torch.tensor([[-1.0, 1.0], [-1.0, 1.0]]))


def test_auto_scale_sets_the_fast_lr_from_running_maxima():
    comp = ChoppedTransferCompound(**_pair(in_chop_prob=0.0, auto_scale=True, fast_lr=0.1, transfer_every=0.0))
    state = comp.build_state((2, 3), gen(0))
    x = torch.tensor([[0.5, -2.0, 1.0]])
    d = torch.tensor([[0.25, -0.1]])
    lr_fast = comp.fast_lr_for(state, x, d, 0.3, UpdateConfig(desired_bl=5))
    assert float(state.x_max_ema) == 2.0 and float(state.d_max_ema) == 0.25  # first values start the means
    assert lr_fast == pytest.approx(0.1 * 5 * 0.01 / (2.0 * 0.25))


def test_agad_reads_relative_to_the_previous_periods_mean():
    # A constant (no gradient): after the first chopper switch the reference equals A's read, so the
    # buffer stops growing; nothing is written to C before P sweeps (the warm-up).
    comp = DynamicTransferCompound(**_pair(in_chop_prob=0.5, tail_weightening=10.0, units_in_mbatch=True,
                                           n_reads_per_transfer=2, scale_transfer_lr=False, transfer_lr=0.001))
    state = comp.build_state((2, 2), gen(0))
    assert comp.chop_period == 2 and comp.mean_rate == 1.0
    offset = torch.tensor([[0.3, -0.2], [0.05, 0.1]])
    state.devices[0].w.copy_(offset)
    seen = []
    for _ in range(6):
        comp.pulsed_update_(state, torch.zeros(1, 2), torch.zeros(1, 2), 0.1, FP, gen(1))
        seen.append(state.buffer.clone())
    torch.testing.assert_close(state.running_mean, offset)
    torch.testing.assert_close(state.past_mean, offset)
    torch.testing.assert_close(seen[-1], seen[2])  # no growth once the reference is the offset
    assert torch.count_nonzero(state.devices[1].w) == 0
