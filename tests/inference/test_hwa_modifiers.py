"""Weight modifiers for hardware-aware training: statistics against each equation, gradients, config.

Tolerances are Z = 5 standard errors (SE) of the statistic, from the stated sample size n:
SE of a mean of X is sd(X)/√n; SE of a sample std s of normal X is s/√(2n); for non-normal X
the SE of an RMS r is √Var(X²)/(2r√n) (estimated from the sample). A correct implementation fails
a check with probability < 1e-6; seeds are fixed, so the suite is deterministic anyway.
"""

from __future__ import annotations

import math

import pytest
import torch

from analogkit.inference.modifiers import (
    WEIGHT_MODIFIERS,
    WeightModifier,
    apply_weight_modifier,
    discretize,
    modifier_wmax,
    pcm_noise,
)
from analogkit.inference.pcm import PCMLikeNoise

Z = 5.0
N = 2**18  # elements per statistic unless stated otherwise


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def weights(shape=(4, 256, 256), seed: int = 1, wmax: float = 0.5) -> torch.Tensor:
    """Uniform weights in [−wmax, wmax] with max|W| = wmax exactly (n = 2^18 by default)."""
    w = (torch.rand(shape, generator=gen(seed)) * 2 - 1) * wmax
    w.view(-1)[0] = wmax
    return w


def cfg_for(kind: str, **kw) -> WeightModifier:
    defaults = {"std_dev": 0.05}
    if kind in ("discretize", "discretize_add_normal"):
        defaults["res"] = 1 / 254
    if kind == "drop_connect":
        defaults["pdrop"] = 0.1
    defaults.update(kw)
    return WeightModifier(type=kind, **defaults)


def assert_std(x: torch.Tensor, expected: float) -> None:
    n = x.numel()
    s = float(x.std())
    assert abs(s - expected) <= Z * expected / math.sqrt(2 * n), (s, expected)


def assert_zero_mean(x: torch.Tensor, sd: float) -> None:
    assert abs(float(x.mean())) <= Z * sd / math.sqrt(x.numel())


def rms_se(x: torch.Tensor) -> tuple[float, float]:
    """(RMS, its SE) for an arbitrary distribution, SE = √Var(X²)/(2·RMS·√n)."""
    x = x.double()
    x2 = x * x
    r = float(x2.mean().sqrt())
    return r, float(x2.var().sqrt()) / (2 * r * math.sqrt(x.numel()))


# -- registry, shapes, gradient ----------------------------------------------------------------------
def test_registry_has_every_incumbent_type():
    wanted = {"none", "discretize", "add_normal", "mult_normal", "discretize_add_normal", "poly",
              "prog_noise", "pcm_noise", "drop_connect"}
    assert wanted <= set(WEIGHT_MODIFIERS)
    assert "mult_normal_wmax" in WEIGHT_MODIFIERS


@pytest.mark.parametrize("kind", list(WEIGHT_MODIFIERS))
@pytest.mark.parametrize("shape", [(6, 7), (3, 6, 7)])
def test_straight_through_gradient_and_shape(kind, shape):
    w = weights(shape).requires_grad_(True)
    cfg = cfg_for(kind, pdrop=0.0, pcm_t_inference=3600.0)
    out = apply_weight_modifier(w, cfg, gen())
    assert out.shape == w.shape and out.dtype == w.dtype
    (out * torch.arange(out.numel()).reshape(shape)).sum().backward()
    # d out / d w is the identity: the incoming gradient arrives unchanged
    torch.testing.assert_close(w.grad, torch.arange(w.numel(), dtype=w.dtype).reshape(shape))


@pytest.mark.parametrize("kind", list(WEIGHT_MODIFIERS))
def test_only_the_given_generator_is_used(kind):
    w = weights((32, 32))
    cfg = cfg_for(kind, pcm_t_inference=60.0, pdrop=0.2)
    state = torch.get_rng_state()
    a = apply_weight_modifier(w, cfg, gen(7))
    assert torch.equal(torch.get_rng_state(), state), "the global RNG was used"
    b = apply_weight_modifier(w, cfg, gen(7))
    assert torch.equal(a, b)
    if kind not in ("none",):
        assert not torch.equal(a, apply_weight_modifier(w, cfg, gen(8)))


def test_none_returns_w_unchanged():
    w = weights((5, 5)).requires_grad_(True)
    assert apply_weight_modifier(w, WeightModifier(), gen()) is w
    assert apply_weight_modifier(w, WeightModifier(type="none", std_dev=0.3), gen()) is w


def test_eval_mode_needs_enable_during_test():
    w = weights((16, 16))
    cfg = WeightModifier(type="add_normal", std_dev=0.1)
    assert apply_weight_modifier(w, cfg, gen(), training=False) is w
    on = cfg.replace(enable_during_test=True)
    assert not torch.equal(apply_weight_modifier(w, on, gen(), training=False), w)
    assert not cfg.is_active(False) and on.is_active(False) and cfg.is_active(True)


def test_wmax_choice():
    w = weights((8, 8), wmax=0.7)
    assert float(modifier_wmax(w, WeightModifier())) == pytest.approx(0.7)
    assert float(modifier_wmax(w, WeightModifier(rel_to_actual_wmax=False, assumed_wmax=2.0))) == 2.0


# -- statistics of each equation ---------------------------------------------------------------------
@pytest.mark.parametrize("rel,a", [(True, 0.5), (False, 2.0)])
def test_add_normal(rel, a):
    w = weights()  # max|W| = 0.5
    sigma = 0.06
    cfg = WeightModifier(type="add_normal", std_dev=sigma, rel_to_actual_wmax=rel, assumed_wmax=2.0)
    diff = apply_weight_modifier(w, cfg, gen()) - w  # ~ N(0, (σa)²), n = 2^18
    assert_zero_mean(diff, sigma * a)
    assert_std(diff, sigma * a)


def test_mult_normal_is_relative_to_w():
    w = weights(wmax=2.0)
    w = torch.where(w.abs() < 0.1, torch.full_like(w, 0.1), w)  # avoid dividing by ~0
    sigma = 0.1
    rel = (apply_weight_modifier(w, WeightModifier(type="mult_normal", std_dev=sigma), gen()) - w) / w
    assert_zero_mean(rel, sigma)
    assert_std(rel, sigma)  # independent of a = 2
    rel_wmax = (apply_weight_modifier(w, WeightModifier(type="mult_normal_wmax", std_dev=sigma), gen()) - w) / w
    assert_std(rel_wmax, sigma * 2.0)  # incumbent C++ variant: σ·a


def test_mult_normal_variants_agree_at_unit_wmax():
    w = weights((16, 16), wmax=1.0)
    a = apply_weight_modifier(w, WeightModifier(type="mult_normal", std_dev=0.1), gen(3))
    b = apply_weight_modifier(w, WeightModifier(type="mult_normal_wmax", std_dev=0.1), gen(3))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("res,n_steps", [(1 / 254, 254), (254.0, 254), (0.25, 4), (1 / 7, 7)])
def test_discretize_levels(res, n_steps):
    a = 0.5
    w = weights()
    out = apply_weight_modifier(w, WeightModifier(type="discretize", res=res), gen())
    delta = 2 * a / n_steps
    k = out / delta
    assert torch.allclose(k, k.round(), atol=1e-4), "values off the grid k·Δ"
    assert int(k.round().abs().max()) == n_steps // 2  # largest level inside [−a, a]
    assert len(torch.unique(k.round())) == 2 * (n_steps // 2) + 1
    inside = w.abs() <= (n_steps // 2) * delta
    # nearest level (float rounding allowance 1e-6)
    assert float((out - w)[inside].abs().max()) <= delta / 2 + 1e-6


def test_discretize_stochastic_rounding_is_unbiased():
    a, n = 1.0, 100_000
    delta = 2 * a / 10
    w = torch.full((n, 1), 0.33)
    w[0, 0] = a
    out = apply_weight_modifier(w, WeightModifier(type="discretize", res=0.1, sto_round=True), gen())[1:]
    assert set(torch.unique((out / delta).round()).tolist()) == {1.0, 2.0}  # the two neighbours of 0.33
    # Bernoulli between 0.2 and 0.4: sd <= Δ/2, n = 10^5
    assert abs(float(out.mean()) - 0.33) <= Z * (delta / 2) / math.sqrt(n)


def test_discretize_function_all_zero_weights():
    w = torch.zeros(4, 4)
    assert torch.equal(discretize(w, w.abs().amax(), 1 / 254), w)


def test_discretize_add_normal():
    w = weights()
    sigma, a = 0.03, 0.5
    cfg = WeightModifier(type="discretize_add_normal", res=1 / 254, std_dev=sigma)
    noise = apply_weight_modifier(w, cfg, gen()) - discretize(w, a, 1 / 254)
    assert_zero_mean(noise, sigma * a)
    assert_std(noise, sigma * a)


def test_poly():
    w = weights(wmax=2.0)
    a, sigma = 2.0, 1.0
    c = [0.0105392, 0.0768, -0.046925]
    diff = apply_weight_modifier(w, WeightModifier(type="poly", std_dev=sigma), gen()) - w
    g = w.abs() / a
    z = diff / (sigma * a * (c[0] + c[1] * g + c[2] * g * g))  # standard normal, n = 2^18
    assert_zero_mean(z, 1.0)
    assert_std(z, 1.0)


def test_prog_noise_keeps_sign_and_folds_at_zero():
    a = 1.0
    n = 100_000
    mu, sd = 0.05, 0.1  # ĝ = 0.05 with noise sd 0.1: about 31 % of the draws would cross zero
    w = torch.full((n, 2), -mu)
    w[:, 1] = mu
    w[0, 0] = -a
    cfg = WeightModifier(type="prog_noise", std_dev=1.0, coeffs=[sd])
    out = apply_weight_modifier(w, cfg, gen())
    assert torch.equal(torch.sign(out), torch.sign(w)), "a weight changed sign"
    # |ĝ + sd·ξ| is folded normal: E = sd·√(2/π)·exp(−μ²/2sd²) + μ(1 − 2Φ(−μ/sd)); sd(|X|) <= sd
    phi = 0.5 * (1 + math.erf(-mu / sd / math.sqrt(2)))
    expected = sd * math.sqrt(2 / math.pi) * math.exp(-mu**2 / (2 * sd**2)) + mu * (1 - 2 * phi)
    mags = out[1:].abs()  # n − 1 rows, both columns
    assert abs(float(mags.mean()) - expected) <= Z * sd / math.sqrt(mags.numel())
    zero = torch.zeros(3, 3)
    zero[0, 0] = 1.0
    assert float(apply_weight_modifier(zero, cfg, gen())[1:].abs().max()) == 0.0  # zeros stay zero


def test_prog_noise_matches_poly_far_from_zero():
    w = torch.full((N, 1), 0.8)
    w[0, 0] = 1.0
    sigma = 0.5
    coeffs = [0.0105392, 0.0768, -0.046925]
    sd = sigma * (coeffs[0] + coeffs[1] * 0.8 + coeffs[2] * 0.64)  # ≈ 0.028 ≪ 0.8: folding never happens
    diff = (apply_weight_modifier(w, WeightModifier(type="prog_noise", std_dev=sigma), gen()) - w)[1:]
    assert_zero_mean(diff, sd)
    assert_std(diff, sd)


def test_drop_connect_fraction_and_gradient():
    p = 0.2
    w = weights().requires_grad_(True)
    out = apply_weight_modifier(w, WeightModifier(type="drop_connect", pdrop=p), gen())
    dropped = out == 0
    # binomial: SE = √(p(1−p)/n), n = 2^18
    assert abs(float(dropped.float().mean()) - p) <= Z * math.sqrt(p * (1 - p) / N)
    torch.testing.assert_close(out[~dropped], w[~dropped].detach())
    out.sum().backward()
    assert torch.equal(w.grad, (~dropped).float())


def test_drop_connect_combines_with_noise():
    p = 0.1
    w = weights().requires_grad_(True)
    cfg = WeightModifier(type="add_normal", std_dev=0.05, pdrop=p)
    out = apply_weight_modifier(w, cfg, gen())
    dropped = out == 0
    assert abs(float(dropped.float().mean()) - p) <= Z * math.sqrt(p * (1 - p) / N)
    kept = (out - w)[~dropped].detach()
    assert_std(kept, 0.05 * 0.5)
    out.sum().backward()
    assert torch.equal(w.grad, (~dropped).float())


# -- PCM noise ----------------------------------------------------------------------------------------
PCM_LEVELS = [-1.0, -0.5, 0.0, 0.25, 0.5, 1.0]  # in units of a


def pcm_weights(n: int = 20_000, a: float = 0.8) -> torch.Tensor:
    """n weights at each level of PCM_LEVELS·a: shape (levels, n); max|W| = a."""
    return torch.tensor(PCM_LEVELS).unsqueeze(1).expand(len(PCM_LEVELS), n).contiguous() * a


@pytest.mark.parametrize("t", [0.0, 3600.0, 86400.0 * 30])
def test_pcm_noise_matches_the_noise_model(t):
    """Same distribution as programming + reading with PCMLikeNoise (n = 2·10^4 per level, two
    independent samples: SE of a difference of means √(s1² + s2²)/√n; of RMS the same with rms_se)."""
    w = pcm_weights()
    cfg = WeightModifier(type="pcm_noise", pcm_t_inference=t, pcm_drift_compensation=False)
    ours = apply_weight_modifier(w, cfg, gen(1))
    ref = PCMLikeNoise().sample_weights(w, t, gen(2))
    for i, level in enumerate(PCM_LEVELS):
        x, y = ours[i] - w[i], ref[i] - w[i]
        se_mean = math.sqrt(float(x.var()) + float(y.var())) / math.sqrt(x.numel())
        assert abs(float(x.mean() - y.mean())) <= Z * se_mean + 1e-7, (level, float(x.mean()), float(y.mean()))
        (rx, sx), (ry, sy) = rms_se(x), rms_se(y)
        assert abs(rx - ry) <= Z * math.hypot(sx, sy) + 1e-7, (level, rx, ry)


def test_pcm_noise_drift_and_compensation():
    w = pcm_weights(a=1.0)
    t = 86400.0
    raw = apply_weight_modifier(w, WeightModifier(type="pcm_noise", pcm_t_inference=t, pcm_drift_compensation=False), gen())
    comp = apply_weight_modifier(w, WeightModifier(type="pcm_noise", pcm_t_inference=t), gen())
    # drift shrinks |w| by ((t + t0)/t0)^−ν with ν ≈ 0.05 at g_max: factor ≈ 4321^−0.05 ≈ 0.66
    shrink = float(raw[-1].mean())
    assert 0.55 < shrink < 0.75
    # compensation rescales by Σ|w_prog|/Σ|w(t)|; programming noise adds little to Σ|w| (zero-mean
    # except at w = 0, where it adds E|half-normal| ≈ 0.26 µS·0.8/25 ≈ 0.008 per device), so the
    # compensated layer keeps Σ|w| within a few percent
    ratio = float(comp.abs().sum() / w.abs().sum())
    assert 0.97 < ratio < 1.05
    # and the per-level mean is back near the target
    assert abs(float(comp[-1].mean()) - 1.0) < 0.05


def test_pcm_noise_with_assumed_wmax_clips_to_gmax():
    w = torch.tensor([[3.0, -3.0, 0.5, 0.0]]).repeat(5000, 1)
    cfg = WeightModifier(type="pcm_noise", rel_to_actual_wmax=False, assumed_wmax=1.0, pcm_drift_compensation=False)
    out = apply_weight_modifier(w, cfg, gen())
    # w beyond a is programmed at g_max: mean ≈ ±1 (programming noise mean 0; read noise mean 0)
    assert abs(float(out[:, 0].mean()) - 1.0) < 0.01 and abs(float(out[:, 1].mean()) + 1.0) < 0.01


def test_pcm_noise_function_rejects_negative_time():
    with pytest.raises(ValueError, match="t_inference"):
        pcm_noise(torch.ones(2, 2), 1.0, gen(), t_inference=-1.0)


# -- config validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"type": "gaussian"}, "type"),
        ({"std_dev": -0.1}, "std_dev"),
        ({"std_dev": float("nan")}, "std_dev"),
        ({"res": -1.0}, "res"),
        ({"type": "discretize"}, "res"),
        ({"type": "discretize_add_normal", "res": 0.0}, "res"),
        ({"sto_round": "yes"}, "sto_round"),
        ({"pdrop": 1.0}, "pdrop"),
        ({"pdrop": -0.1}, "pdrop"),
        ({"rel_to_actual_wmax": 1}, "rel_to_actual_wmax"),
        ({"assumed_wmax": 0.0}, "assumed_wmax"),
        ({"coeffs": []}, "coeffs"),
        ({"coeffs": [0.1, "x"]}, "coeffs"),
        ({"g_max": 0.0}, "g_max"),
        ({"pcm_t_inference": -1.0}, "pcm_t_inference"),
        ({"pcm_t0": 0.0}, "pcm_t0"),
        ({"enable_during_test": None}, "enable_during_test"),
    ],
)
def test_invalid_config_raises(kwargs, field):
    with pytest.raises(ValueError, match=rf"WeightModifier\.{field}: .* is not allowed; use"):
        WeightModifier(**kwargs)


def test_config_round_trip_and_defaults():
    cfg = WeightModifier(type="poly", std_dev=0.5, coeffs=[0.1, 0.2], pdrop=0.05)
    assert WeightModifier.from_dict(cfg.to_dict()) == cfg
    assert WeightModifier.from_yaml(cfg.to_yaml()) == cfg
    d = WeightModifier()
    assert (d.type, d.std_dev, d.res, d.pdrop, d.g_max, d.enable_during_test) == ("none", 0.0, 0.0, 0.0, 25.0, False)
    assert d.coeffs == [0.0105392, 0.0768, -0.046925]


def test_bad_arguments():
    w = weights((4, 4))
    with pytest.raises(TypeError, match="generator"):
        apply_weight_modifier(w, WeightModifier(type="add_normal", std_dev=0.1), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="WeightModifier"):
        apply_weight_modifier(w, {"type": "add_normal"}, gen())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        apply_weight_modifier(torch.ones(4), WeightModifier(type="add_normal", std_dev=0.1), gen())
