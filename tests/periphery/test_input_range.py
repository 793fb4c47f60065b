"""Learned input range (Rasch et al. 2023): clipping, data initialisation, the range gradient,
decay, per-group ranges, state_dict round trip and config validation."""

from __future__ import annotations

import io
import math

import pytest
import torch

from analogkit.periphery.input_range import RANGE_FLOOR, InputRange, InputRangeConfig, input_range_clip


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def r_of(m: InputRange) -> float:
    return float(m.input_range.detach().sum())


def fixed(r: float, **kw) -> InputRange:
    """A module with range r and no data initialisation."""
    m = InputRange(InputRangeConfig(enable=True, init_value=r, init_from_data=0, **kw))
    return m


def test_clips_to_the_range_and_passes_inside():
    m = fixed(1.5)
    x = torch.tensor([[-3.0, -1.5, -0.2, 0.0, 1.0, 1.49, 2.0]])
    torch.testing.assert_close(m(x), torch.tensor([[-1.5, -1.5, -0.2, 0.0, 1.0, 1.49, 1.5]]))
    m.eval()
    torch.testing.assert_close(m(x), torch.tensor([[-1.5, -1.5, -0.2, 0.0, 1.0, 1.49, 1.5]]))
    assert float(m.range()) == 1.5


def test_data_initialisation_is_the_running_mean_of_alpha_std():
    n_init, sigma, alpha = 20, 0.7, 3.0
    m = InputRange(InputRangeConfig(init_from_data=n_init, init_std_alpha=alpha))
    g = gen()
    expected = []
    for _ in range(n_init):
        x = sigma * torch.randn(10, 100, generator=g)  # 1000 samples per batch
        expected.append(alpha * float(x.std()))
        y = m(x)
        torch.testing.assert_close(r_of(m), sum(expected) / len(expected), rtol=1e-5, atol=0)
        assert float(y.abs().max()) <= r_of(m)  # clipped with the new range
    assert int(m.init_batches) == n_init and not m.initializing
    # SE of one batch's std: σ/√(2·1000); of the mean of 20 batches ×α: α·σ/√(2·1000·20) ≈ 0.0105; 5 SE
    assert abs(r_of(m) - alpha * sigma) <= 5 * alpha * sigma / math.sqrt(2 * 1000 * n_init)
    # afterwards, data no longer sets the range
    m(5 * torch.randn(10, 100, generator=g))
    assert int(m.init_batches) == n_init
    torch.testing.assert_close(r_of(m), sum(expected) / len(expected), rtol=1e-5, atol=0)


def test_no_initialisation_in_eval_mode_and_no_gradient_while_initialising():
    m = InputRange(InputRangeConfig(init_from_data=2, init_value=3.0))
    m.eval()
    m(torch.randn(4, 8, generator=gen()))
    assert int(m.init_batches) == 0 and r_of(m) == 3.0
    m.train()
    x = torch.randn(4, 8, generator=gen(), requires_grad=True)
    m(x).pow(2).sum().backward()
    assert m.input_range.grad is None and x.grad is not None
    assert int(m.init_batches) == 1


def hand_example(r: float):
    """x scaled by r, with d = dL/dy: upper-clipped (x >= r) at 0 and 3, lower-clipped (x <= −r) at 1 and 4."""
    x = torch.tensor([2.0, -1.5, 0.5, 1.0, -1.0, 0.2]) * r
    d = torch.tensor([-0.3, 0.4, 0.7, 0.2, -0.5, 0.1])
    return x, d


@pytest.mark.parametrize("relative", [True, False])
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_gradient_formula_hand_computed(relative, scale):
    r = 2.0
    m = fixed(r, gradient_relative=relative, gradient_scale=scale, decay=0.01)
    x, d = hand_example(r)
    x.requires_grad_(True)
    (m(x) * d).sum().backward()
    # g = Σ min(d·[x>=r], 0) − Σ max(d·[x<=−r], 0) = min(−0.3, 0) + min(0.2, 0) − (max(0.4, 0) + max(−0.5, 0))
    #   = −0.3 − 0.4 = −0.7;  ×r if relative;  unclipped fraction 2/6 < 0.95: no decay;  × gradient_scale
    g = -0.7 * (r if relative else 1.0) * scale
    torch.testing.assert_close(m.input_range.grad, torch.tensor([g]))
    torch.testing.assert_close(x.grad, torch.tensor([0.0, 0.0, 0.7, 0.0, 0.0, 0.1]))  # straight-through inside only


def test_decay_term_when_almost_nothing_clips():
    r, decay = 3.0, 0.01
    m = fixed(r, decay=decay, input_min_percentage=0.95)
    x = torch.linspace(-1, 1, 100).requires_grad_(True)  # nothing clips: fraction 1 > 0.95
    (m(x) * torch.ones(100)).sum().backward()
    torch.testing.assert_close(m.input_range.grad, torch.tensor([decay * r]))
    # 6 of 100 clip (fraction 0.94 < 0.95): no decay; the clipped have d = 0, so g = 0
    m.input_range.grad = None
    x2 = torch.cat([torch.linspace(-1, 1, 94), torch.full((6,), 5.0)])
    (m(x2) * torch.cat([torch.ones(94), torch.zeros(6)])).sum().backward()
    torch.testing.assert_close(m.input_range.grad, torch.tensor([0.0]))


def test_decay_shrinks_the_range_with_sgd_and_adam():
    decay, lr, steps = 0.1, 1.0, 10
    m = fixed(3.0, decay=decay)
    opt = torch.optim.SGD(m.parameters(), lr=lr)
    x = 0.1 * torch.randn(64, 16, generator=gen())
    for _ in range(steps):
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()
    # r ← r − lr·decay·r each step while nothing clips
    assert r_of(m) == pytest.approx(3.0 * (1 - lr * decay) ** steps, rel=1e-5)
    m2 = fixed(3.0, decay=decay)
    opt2 = torch.optim.Adam(m2.parameters(), lr=0.05)
    for _ in range(steps):
        opt2.zero_grad()
        m2(x).sum().backward()
        opt2.step()
    assert r_of(m2) < 3.0 - 0.4


def test_range_grows_when_clipping_hurts():
    m = fixed(0.5, decay=0.0)
    opt = torch.optim.SGD(m.parameters(), lr=0.01)
    g = gen()
    history = [r_of(m)]
    for _ in range(20):
        x = torch.randn(32, 16, generator=g)
        opt.zero_grad()
        ((m(x) - x) ** 2).sum().backward()  # the loss wants y = x: clipped inputs push r up
        opt.step()
        history.append(r_of(m))
    assert all(b >= a for a, b in zip(history, history[1:])), history  # (equal once nothing clips)
    assert history[-1] > 1.0


def test_fixed_range_is_not_learned_but_still_initialised():
    m = InputRange(InputRangeConfig(learn_input_range=False, init_from_data=1))
    assert not m.input_range.requires_grad
    x = torch.randn(8, 8, generator=gen(), requires_grad=True)
    m(x)
    assert r_of(m) == pytest.approx(3 * float(x.detach().std()), rel=1e-6)
    m(x * 3).sum().backward()
    assert m.input_range.grad is None


def test_per_group_ranges_match_separate_modules():
    cfg = InputRangeConfig(init_from_data=1, decay=0.01)
    grouped = InputRange(cfg, groups=3)
    singles = [InputRange(cfg) for _ in range(3)]
    g = gen()
    x0 = torch.randn(16, 3, 10, generator=g) * torch.tensor([0.5, 1.0, 2.0]).reshape(1, 3, 1)
    grouped(x0)
    for i, s in enumerate(singles):
        s(x0[:, i])
    torch.testing.assert_close(grouped.input_range, torch.cat([s.input_range for s in singles]).detach())
    x = torch.randn(16, 3, 10, generator=g) * 2
    d = torch.randn(16, 3, 10, generator=g)
    (grouped(x) * d).sum().backward()
    for i, s in enumerate(singles):
        (s(x[:, i]) * d[:, i]).sum().backward()
    torch.testing.assert_close(grouped.input_range.grad, torch.cat([s.input_range.grad for s in singles]))
    with pytest.raises(ValueError, match="groups=3"):
        grouped(torch.randn(4, 2, 10))


def test_state_dict_round_trip():
    m = InputRange(InputRangeConfig(init_from_data=3))
    for i in range(2):
        m(torch.randn(8, 8, generator=gen(i)))
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    assert set(state) == {"input_range", "init_batches"}
    fresh = InputRange(InputRangeConfig(init_from_data=3))
    fresh.load_state_dict(state)
    assert torch.equal(fresh.input_range, m.input_range) and int(fresh.init_batches) == 2
    x = torch.randn(8, 8, generator=gen(5))
    torch.testing.assert_close(fresh(x), m(x))  # the third (last) init batch gives the same range
    assert not fresh.initializing


def test_range_floor_keeps_forward_finite():
    r = torch.tensor(-1.0, requires_grad=True)
    y = input_range_clip(torch.tensor([0.5, -0.5]), r, InputRangeConfig())
    assert torch.equal(y, torch.tensor([RANGE_FLOOR, -RANGE_FLOOR]))


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"enable": 1}, "enable"),
        ({"learn_input_range": "no"}, "learn_input_range"),
        ({"init_value": 0.0}, "init_value"),
        ({"init_from_data": -1}, "init_from_data"),
        ({"init_from_data": 2.5}, "init_from_data"),
        ({"init_std_alpha": 0.0}, "init_std_alpha"),
        ({"decay": -0.1}, "decay"),
        ({"input_min_percentage": 1.5}, "input_min_percentage"),
        ({"gradient_scale": -1.0}, "gradient_scale"),
        ({"gradient_relative": None}, "gradient_relative"),
    ],
)
def test_invalid_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=rf"InputRangeConfig\.{field}: .* is not allowed; use"):
        InputRangeConfig(**kwargs)


def test_defaults_and_bad_arguments():
    c = InputRangeConfig()
    assert (c.enable, c.learn_input_range, c.init_value, c.init_from_data, c.init_std_alpha, c.decay,
            c.input_min_percentage, c.gradient_scale, c.gradient_relative) == (False, True, 3.0, 100, 3.0, 0.001, 0.95, 1.0, True)
    assert InputRangeConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="groups"):
        InputRange(c, groups=0)
    with pytest.raises(TypeError, match="InputRangeConfig"):
        InputRange({"enable": True})  # type: ignore[arg-type]
