"""Inference noise models: the interface for every registered model, and sample statistics
against the published equations (each with its sample size and a tolerance derived from it).

Tolerances are 5 standard errors (SE) of the statistic: a correct model fails a given check
with probability < 1e-6; all seeds are fixed, so the suite is deterministic anyway.
SE of a sample mean of X: sd(X)/√n. SE of a sample RMS r of zero-mean X: √Var(X²)/(2 r √n).
"""

from __future__ import annotations

import dataclasses
import doctest
import io
import math
from dataclasses import dataclass, field

import pytest
import torch

import analogkit.inference as inference
from analogkit.config.base import _CONFIG_KINDS, ConfigBase
from analogkit.inference import (
    NOISE_MODELS,
    CustomDriftPCMNoise,
    DualPairConverter,
    NoiseModel,
    PCMLikeNoise,
    ProgrammedState,
    ReRAMCMONoise,
    ReRAMPolynomialNoise,
    SingleDeviceConverter,
    SinglePairConverter,
    StateIndependentNoise,
    randn,
)

Z = 5.0  # tolerance in standard errors
T_YEAR = 365 * 24 * 3600.0


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def times_for(model: NoiseModel) -> list[float]:
    return model.allowed_times or [0.0, 60.0, 86400.0, T_YEAR]


def folded_normal_moments(mu: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """E|X|, E X², Var(X²) for X ~ N(mu, sigma)."""
    normal = torch.distributions.Normal(0.0, 1.0)
    r = mu / sigma
    mean = sigma * math.sqrt(2 / math.pi) * torch.exp(-0.5 * r**2) + mu * (1 - 2 * normal.cdf(-r))
    m2 = mu**2 + sigma**2
    var_x2 = 4 * mu**2 * sigma**2 + 2 * sigma**4
    return mean, m2, var_x2


def levels(values: list[float], n: int, dtype=torch.float64) -> torch.Tensor:
    """Conductance levels (µS), n devices each: shape (len(values), n)."""
    return torch.tensor(values, dtype=dtype)[:, None].expand(len(values), n).contiguous()


# ----------------------------------------------------------------------------------------
# Interface, for every registered model
# ----------------------------------------------------------------------------------------
MODELS = [pytest.param(NOISE_MODELS.get(name), id=name) for name in NOISE_MODELS]


def _weights(seed: int = 3, shape=(16, 12), dtype=torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=gen(seed), dtype=dtype)


@pytest.mark.parametrize("cls", MODELS)
def test_program_and_drift_shapes_dtype_nonnegative(cls):
    model = cls()
    for dtype in (torch.float32, torch.float64):
        w = _weights(dtype=dtype)
        state = model.program(w, gen(1))
        assert state.n_slices == model.converter.n_conductances
        for g in state.g_target + state.g_prog + state.nu:
            assert g.shape == w.shape and g.dtype == dtype and g.device == w.device
        for g in state.g_prog:
            assert float(g.min()) >= 0.0
        for t in times_for(model):
            gs = model.drifted_conductances(state, t, gen(2))
            assert all(float(g.min()) >= 0.0 and torch.isfinite(g).all() for g in gs)
            wt = model.drifted_weights(state, t, gen(2))
            assert wt.shape == w.shape and wt.dtype == dtype and torch.isfinite(wt).all()
        assert model.programmed_weights(state).shape == w.shape


@pytest.mark.parametrize("cls", MODELS)
def test_never_negative_under_strong_noise(cls):
    fields = {f.name for f in dataclasses.fields(cls)}
    strong = {k: 20.0 for k in ("prog_noise_scale", "read_noise_scale", "drift_scale", "noise_scale") if k in fields}
    model = cls(**strong)
    state = model.program(_weights(shape=(64, 64)), gen(4))
    assert all(float(g.min()) >= 0.0 for g in state.g_prog)
    for t in times_for(model):
        assert all(float(g.min()) >= 0.0 for g in model.drifted_conductances(state, t, gen(5)))


@pytest.mark.parametrize("cls", MODELS)
def test_same_seed_same_result(cls):
    model = cls()
    w = _weights()
    s1, s2 = model.program(w, gen(7)), model.program(w, gen(7))
    for a, b in zip(s1.g_prog + s1.nu, s2.g_prog + s2.nu):
        assert torch.equal(a, b)
    t = times_for(model)[-1]
    assert torch.equal(model.drifted_weights(s1, t, gen(8)), model.drifted_weights(s2, t, gen(8)))
    if cls.kind != "noiseless":
        s3 = model.program(w, gen(9))
        assert not all(torch.equal(a, b) for a, b in zip(s1.g_prog, s3.g_prog))


@pytest.mark.parametrize("cls", MODELS)
def test_global_rng_untouched(cls):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    model = cls()
    state = model.program(_weights(), gen(1))
    model.drifted_weights(state, times_for(model)[-1], gen(2))
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.parametrize("cls", MODELS)
def test_config_round_trip(cls):
    model = cls()
    assert cls.kind and NOISE_MODELS.get(cls.kind) is cls and _CONFIG_KINDS[cls.kind] is cls
    assert cls.from_dict(model.to_dict()) == model
    assert cls.from_yaml(model.to_yaml()) == model
    assert cls.from_json(model.to_json()) == model
    # inside a parent config typed with the base classes: rebuilt from its "kind"
    holder = _Holder(noise=model)
    again = _Holder.from_yaml(holder.to_yaml())
    assert type(again.noise) is cls and again == holder


@dataclass
class _Holder(ConfigBase):
    noise: NoiseModel = field(default_factory=PCMLikeNoise)


def test_converter_swapped_inside_model_round_trips():
    model = PCMLikeNoise(converter=DualPairConverter(g_max=30.0, f_lst=[1.0, 2.0]))
    again = PCMLikeNoise.from_dict(model.to_dict())
    assert isinstance(again.converter, DualPairConverter) and again == model
    state = model.program(_weights(), gen(0))
    assert state.n_slices == 4


@pytest.mark.parametrize("cls", MODELS)
def test_programmed_state_save_load(cls):
    model = cls()
    w = _weights()
    state = model.program(w, gen(11))
    buf = io.BytesIO()
    torch.save(state.state_dict(), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    again = ProgrammedState.from_state_dict(loaded)
    t = times_for(model)[-1]
    assert torch.equal(model.drifted_weights(state, t, gen(12)), model.drifted_weights(again, t, gen(12)))
    other = model.program(_weights(seed=99), gen(13))
    other.load_state_dict(loaded)
    assert torch.equal(model.programmed_weights(other), model.programmed_weights(state))
    assert torch.equal(other.to(torch.float64).g_prog[0], state.g_prog[0].double())


def test_programmed_state_rejects_bad_dicts():
    state = PCMLikeNoise().program(_weights(), gen(0))
    sd = state.state_dict()
    with pytest.raises(ValueError, match="unknown key 'weird'"):
        ProgrammedState.from_state_dict({**sd, "weird": torch.zeros(1)})
    del sd["g_prog.1"]
    with pytest.raises(ValueError, match="same, non-zero number of slices"):
        ProgrammedState.from_state_dict(sd)
    del sd["g_prog.0"]
    with pytest.raises(ValueError, match="not numbered 0..n-1"):
        ProgrammedState.from_state_dict({**sd, "g_prog.1": sd["g_target.1"]})
    state_single = ReRAMCMONoise().program(_weights(), gen(0))
    with pytest.raises(ValueError, match="conductance slices"):
        PCMLikeNoise().drifted_weights(state_single, 1.0, gen(0))


@pytest.mark.parametrize("cls", MODELS)
def test_negative_or_nan_time_rejected(cls):
    model = cls()
    state = model.program(_weights(), gen(0))
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"{cls.__name__}: t_inference"):
            model.drifted_weights(state, bad, gen(0))


@pytest.mark.parametrize(
    "cls, kwargs, field_name",
    [
        (PCMLikeNoise, {"t_0": 0.0}, "t_0"),
        (PCMLikeNoise, {"t_read": -1.0}, "t_read"),
        (PCMLikeNoise, {"prog_coeff": []}, "prog_coeff"),
        (PCMLikeNoise, {"prog_coeff": [0.1, "a"]}, "prog_coeff"),
        (PCMLikeNoise, {"prog_noise_scale": -1.0}, "prog_noise_scale"),
        (PCMLikeNoise, {"read_noise_scale": float("nan")}, "read_noise_scale"),
        (PCMLikeNoise, {"drift_scale": -0.5}, "drift_scale"),
        (PCMLikeNoise, {"prog_coeff_g_max_reference": 0.0}, "prog_coeff_g_max_reference"),
        (PCMLikeNoise, {"converter": "single_pair"}, "converter"),
        (CustomDriftPCMNoise, {"g_lst": [0.0, 10.0], "nu_mean_lst": [0.1]}, "nu_mean_lst"),
        (CustomDriftPCMNoise, {"g_lst": [10.0, 0.0]}, "g_lst"),
        (CustomDriftPCMNoise, {"nu_std_lst": [-0.01, 0.01]}, "nu_std_lst"),
        (StateIndependentNoise, {"drift_nu_std": -0.1}, "drift_nu_std"),
        (StateIndependentNoise, {"read_noise_q": -1.0}, "read_noise_q"),
        (StateIndependentNoise, {"t_0": -5.0}, "t_0"),
        (ReRAMPolynomialNoise, {"times": [1.0, 2.0], "coeffs": [[1.0]]}, "coeffs"),
        (ReRAMPolynomialNoise, {"times": [2.0, 1.0], "coeffs": [[1.0], [1.0]]}, "times"),
        (ReRAMPolynomialNoise, {"noise_scale": -1.0}, "noise_scale"),
        (ReRAMPolynomialNoise, {"coeff_g_max_reference": 0.0}, "coeff_g_max_reference"),
        (ReRAMCMONoise, {"acceptance_range": 1.0}, "acceptance_range"),
        (ReRAMCMONoise, {"relax_std_coeff": [1.0]}, "relax_std_coeff"),
        (ReRAMCMONoise, {"prog_coeffs": [[1.0, 2.0, 3.0], [1.0, 2.0]]}, "prog_coeffs"),
        (ReRAMCMONoise, {"t_read": 0.0}, "t_read"),
    ],
)
def test_invalid_values_name_the_field(cls, kwargs, field_name):
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field_name}: "):
        cls(**kwargs)
    # the same check runs when loading a config
    data = {**cls().to_dict(), **{k: (v.to_dict() if isinstance(v, ConfigBase) else v) for k, v in kwargs.items()}}
    with pytest.raises(ValueError, match=rf"{field_name}"):
        cls.from_dict(data)


def test_converter_g_max_validated():
    with pytest.raises(ValueError, match=r"SinglePairConverter\.g_max: -1"):
        PCMLikeNoise(converter=SinglePairConverter(g_max=-1.0))


# ----------------------------------------------------------------------------------------
# PCM: Nandakumar et al. 2019 statistics (spec §1.12)
# ----------------------------------------------------------------------------------------
def pcm_sigma_prog(g_hat: torch.Tensor, g_max: float = 25.0) -> torch.Tensor:
    return (0.26348 + 1.9650 * g_hat - 1.1731 * g_hat**2) * g_max / 25.0


@pytest.mark.parametrize("g_max", [25.0, 40.0])
def test_pcm_programming_noise_follows_polynomial(g_max):
    # 1e5 weights uniform in [-1, 1] → single pair; one device of each pair carries the target.
    model = PCMLikeNoise(converter=SinglePairConverter(g_max=g_max))
    w = torch.rand(100, 1000, generator=gen(21), dtype=torch.float64) * 2 - 1
    state = model.program(w, gen(22))
    g_t = torch.cat([g.flatten() for g in state.g_target])
    dev = torch.cat([(gp - gt).flatten() for gp, gt in zip(state.g_prog, state.g_target)])
    edges = torch.linspace(0.1, 1.0, 10) * g_max  # skip g_T < 0.1 g_max: the clip at 0 bites there
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (g_t >= lo) & (g_t < hi)
        n = int(sel.sum())
        assert n > 8000  # ~1e4 devices per bin
        sig2 = pcm_sigma_prog(g_t[sel] / g_max, g_max) ** 2
        expected_rms = float(sig2.mean().sqrt())  # deviations are N(0, σ_i²): E dev² = mean σ_i²
        se = math.sqrt(float(3 * (sig2**2).mean() - sig2.mean() ** 2)) / (2 * expected_rms * math.sqrt(n))
        rms = float(dev[sel].pow(2).mean().sqrt())
        assert abs(rms - expected_rms) < Z * se, (float(lo), rms, expected_rms, se)
        assert abs(float(dev[sel].mean())) < Z * expected_rms / math.sqrt(n)  # unbiased


def test_pcm_prog_noise_scale_and_reference():
    g = levels([12.5], 20000)
    base = PCMLikeNoise(prog_noise_scale=2.0)
    dev = base.programming_noise(g, gen(1)) - g
    target = 2.0 * float(pcm_sigma_prog(torch.tensor(0.5)))
    assert abs(float(dev.std()) - target) < Z * target / math.sqrt(2 * g.numel())
    # without a reference g_max the coefficients are used as given (no g_max/25 factor)
    model = PCMLikeNoise(converter=SinglePairConverter(g_max=50.0), prog_coeff_g_max_reference=None)
    torch.testing.assert_close(model.programming_sigma(torch.tensor([25.0])), pcm_sigma_prog(torch.tensor([0.5])))


def test_pcm_drift_exponent_statistics_and_clipping():
    model = PCMLikeNoise()
    g_hat = torch.tensor([0.0, 1e-9, 0.005, 0.012, 0.03, 0.1, 0.25, 0.5, 1.0], dtype=torch.float64)
    mean, std = model.drift_exponent_stats(g_hat * 25.0)
    lg = torch.log(g_hat.clamp(min=1e-7))
    torch.testing.assert_close(mean, (-0.0155 * lg + 0.0244).clamp(0.049, 0.1))
    torch.testing.assert_close(std, (-0.0125 * lg - 0.0059).clamp(0.008, 0.045))
    # the clipping ranges are reached at the ends
    assert float(mean[0]) == pytest.approx(0.1) and float(std[0]) == pytest.approx(0.045)
    assert float(mean[-1]) == pytest.approx(0.049) and float(std[-1]) == pytest.approx(0.008)
    # sampled ν = |N(μ, σ)|: mean against the folded-normal mean, E ν² against μ² + σ²;
    # n = 2e4 per level; SE(mean) = sd/√n, SE(mean ν²) = √Var(ν²)/√n.
    n = 20000
    for scale in (1.0, 2.5):
        m = PCMLikeNoise(drift_scale=scale)
        nu = m.drift_exponents(levels((g_hat * 25.0).tolist(), n), gen(31))
        f_mean, f_m2, var_x2 = folded_normal_moments(mean, std)
        sd = (f_m2 - f_mean**2).sqrt()
        assert ((nu.mean(1) / scale - f_mean).abs() < Z * sd / math.sqrt(n)).all()
        assert ((nu.pow(2).mean(1) / scale**2 - f_m2).abs() < Z * var_x2.sqrt() / math.sqrt(n)).all()
        assert float(nu.min()) >= 0


def test_pcm_drift_log_ratio_equals_minus_nu():
    # read noise off: log(g(t)/g_prog)/log((t+t0)/t0) = −ν for each device, and its mean over 1e5
    # devices matches −E ν(g_T) (expected from the folded-normal mean per target) within 5 SE.
    model = PCMLikeNoise(read_noise_scale=0.0)
    w = torch.rand(100, 1000, generator=gen(41), dtype=torch.float64) * 2 - 1
    state = model.program(w, gen(42))
    for t in (60.0, 86400.0, T_YEAR):
        gs = model.drifted_conductances(state, t, gen(43))
        L = math.log((t + 20.0) / 20.0)
        ratios, nus, targets = [], [], []
        for g, gp, nu, gt in zip(gs, state.g_prog, state.nu, state.g_target):
            keep = gp > 0
            ratios.append(torch.log(g[keep] / gp[keep]) / L)
            nus.append(nu[keep])
            targets.append(gt[keep])
        ratio, nu, g_t = torch.cat(ratios), torch.cat(nus), torch.cat(targets)
        torch.testing.assert_close(ratio, -nu)  # exact, per device
        mu, sig = model.drift_exponent_stats(g_t)
        f_mean, f_m2, _ = folded_normal_moments(mu, sig)
        n = ratio.numel()
        se = math.sqrt(float((f_m2 - f_mean**2).mean())) / math.sqrt(n)
        assert abs(float(ratio.mean()) + float(f_mean.mean())) < Z * se


def test_pcm_read_noise_grows_like_sqrt_log_time():
    # ν fixed per device and programming noise off: relative read deviation (g − g_drift)/g_drift
    # has std Q_s(g_prog)·√ln((t + t0 + t_read)/(2 t_read)); n = 2e4 per level and time,
    # SE(std) ≈ std/√(2n) (normal), 5 SE ≈ 2.5 %.
    model = PCMLikeNoise(prog_noise_scale=0.0)
    n = 20000
    g_hat = [0.05, 0.3, 1.0]
    g = levels([x * 25.0 for x in g_hat], n)
    nu = model.drift_exponents(g, gen(51))
    state = ProgrammedState([g], [g.clone()], [nu], {})
    for t in (0.0, 3600.0, 86400.0, T_YEAR):
        out = model.conductance_at(g, g, nu, t, gen(52))
        g_drift = model.drift(g, nu, t)
        rel = (out - g_drift) / g_drift
        for i, x in enumerate(g_hat):
            q = min(0.0088 / max(x**0.65, 1e-3), 0.2)
            expected = q * math.sqrt(math.log((t + 20.0 + 250e-9) / (2 * 250e-9)))
            assert abs(float(rel[i].std()) - expected) < Z * expected / math.sqrt(2 * n), (t, x)
    assert state.n_slices == 1


def test_pcm_read_noise_scale_zero_is_pure_drift():
    model = PCMLikeNoise(read_noise_scale=0.0, drift_scale=0.0)
    state = model.program(_weights(), gen(0))
    torch.testing.assert_close(model.drifted_weights(state, T_YEAR, gen(1)), model.programmed_weights(state))


def test_custom_drift_curve_honoured():
    model = CustomDriftPCMNoise(g_lst=[2.0, 10.0, 20.0], nu_mean_lst=[0.1, 0.06, 0.02], nu_std_lst=[0.01, 0.02, 0.005])
    g = torch.tensor([0.0, 2.0, 6.0, 10.0, 15.0, 20.0, 25.0], dtype=torch.float64)
    mean, std = model.drift_exponent_stats(g)
    torch.testing.assert_close(mean, torch.tensor([0.1, 0.1, 0.08, 0.06, 0.04, 0.02, 0.02], dtype=torch.float64))
    torch.testing.assert_close(std, torch.tensor([0.01, 0.01, 0.015, 0.02, 0.0125, 0.005, 0.005], dtype=torch.float64))
    # sampled through program(): one device per weight, weights 0..25 map to 0..25 µS, so each
    # row of w is one target level; n = 2e4 per level, SE(mean) = sd/√n
    conv = SingleDeviceConverter(g_min=0.0, g_max=25.0, symmetric=False)
    model = model.replace(converter=conv, prog_noise_scale=0.0)
    n = 20000
    state = model.program(levels([0.0, 6.0, 15.0, 25.0], n), gen(61))
    nu, g_t = state.nu[0], state.g_target[0]
    torch.testing.assert_close(g_t[:, 0], torch.tensor([0.0, 6.0, 15.0, 25.0], dtype=torch.float64))
    mu, sig = model.drift_exponent_stats(g_t[:, 0])
    f_mean, f_m2, _ = folded_normal_moments(mu, sig)
    sd = (f_m2 - f_mean**2).sqrt()
    assert ((nu.mean(1) - f_mean).abs() < Z * sd / math.sqrt(n)).all()


# ----------------------------------------------------------------------------------------
# State-independent model
# ----------------------------------------------------------------------------------------
def test_state_independent_statistics_do_not_depend_on_state():
    model = StateIndependentNoise()
    n = 20000
    g = levels([2.5, 12.5, 25.0], n)
    # programming: σ = 0.2 µS at every level; SE(std) = σ/√(2n)
    dev = model.programming_noise(g, gen(71)) - g
    assert ((dev.std(1) - 0.2).abs() < Z * 0.2 / math.sqrt(2 * n)).all()
    # drift exponents: |N(0.1, 0.05)| at every level
    nu = model.drift_exponents(g, gen(72))
    f_mean, f_m2, var_x2 = folded_normal_moments(torch.tensor(0.1, dtype=torch.float64), torch.tensor(0.05, dtype=torch.float64))
    sd = float((f_m2 - f_mean**2).sqrt())
    assert ((nu.mean(1) - f_mean).abs() < Z * sd / math.sqrt(n)).all()
    # read noise: relative std Q·√ln((t + t0 + t_read)/(2 t_read)) at every level
    t = 3600.0
    out = model.read_noise(g, t, gen(73))
    expected = 0.04 * math.sqrt(math.log((t + 20.0 + 250e-9) / 500e-9))
    rel = (out - g) / g
    # clip at 0 is at > 5 σ here (σ ≈ 0.2), negligible
    assert ((rel.std(1) - expected).abs() < Z * expected / math.sqrt(2 * n)).all()


# ----------------------------------------------------------------------------------------
# ReRAM (Wan et al. 2022 polynomial)
# ----------------------------------------------------------------------------------------
def wan_sigma(g_hat: float, k: int) -> float:
    c = inference.reram.WAN2022_COEFFS[k]
    return sum(ci * g_hat**i for i, ci in enumerate(c))


def test_reram_wan_spread_at_measured_times():
    # n = 2e4 per level; g_T ≥ 16 µS so the clip at 0 is > 4 σ away; SE(std) = σ/√(2n)
    model = ReRAMPolynomialNoise()
    n = 20000
    g_hat = [0.4, 0.6, 0.8, 1.0]
    g = levels([x * 40.0 for x in g_hat], n)
    g_prog = model.programming_noise(g, gen(81))
    for k, t in enumerate(model.times):
        out = model.conductance_at(g, g_prog, torch.zeros_like(g), t, gen(82))
        for i, x in enumerate(g_hat):
            expected = wan_sigma(x, k)
            assert abs(float((out[i] - g[i]).std()) - expected) < Z * expected / math.sqrt(2 * n), (t, x)
    # the first time (and 0 s) is the programmed state itself
    assert torch.equal(model.conductance_at(g, g_prog, g, 1.0, gen(0)), g_prog)
    state = model.program(_weights(), gen(83))
    torch.testing.assert_close(model.drifted_weights(state, 0.0, gen(0)), model.programmed_weights(state))


def test_reram_wan_rescales_with_g_max():
    model = ReRAMPolynomialNoise(converter=SinglePairConverter(g_max=20.0))
    torch.testing.assert_close(model.sigma(torch.tensor([10.0]), 0), torch.tensor([wan_sigma(0.5, 0) * 0.5]))


def test_reram_wan_rejects_other_times_listing_allowed():
    model = ReRAMPolynomialNoise()
    state = model.program(_weights(), gen(0))
    with pytest.raises(ValueError, match=r"t_inference 3600.0 s is not covered.*1, 86400, 172800"):
        model.drifted_weights(state, 3600.0, gen(0))
    assert model.allowed_times == [0.0, 1.0, 86400.0, 172800.0]


# ----------------------------------------------------------------------------------------
# ReRAM CMO/HfOx
# ----------------------------------------------------------------------------------------
def test_reram_cmo_programming_noise_linear_in_g():
    n = 20000
    g = levels([20.0, 50.0, 80.0], n)
    for acc, (a0, a1) in ((0.2, (0.00081107, 0.00106879)), (2.0, (0.0112185391, 0.01129027418))):
        model = ReRAMCMONoise(acceptance_range=acc)
        dev = model.programming_noise(g, gen(91)) - g
        for i, level in enumerate((20.0, 50.0, 80.0)):
            expected = a0 + a1 * level
            assert abs(float(dev[i].std()) - expected) < Z * expected / math.sqrt(2 * n)


def test_reram_cmo_relaxation_and_read_noise():
    # g = 50 µS, far from the [9, 88.2] clip; n = 4e4
    n = 40000
    g = levels([50.0], n)
    t = 3600.0
    relax = ReRAMCMONoise(read_noise_scale=0.0)
    out = relax.conductance_at(g, g, torch.zeros_like(g), t, gen(101))
    mean_exp = -0.08900206 * math.log(t)
    std_exp = 0.04201137 * math.log(t) + 0.41183342
    assert abs(float((out - g).mean()) - mean_exp) < Z * std_exp / math.sqrt(n)
    assert abs(float((out - g).std()) - std_exp) < Z * std_exp / math.sqrt(2 * n)
    read = ReRAMCMONoise(drift_scale=0.0)
    out = read.conductance_at(g, g, torch.zeros_like(g), t, gen(102))
    read_exp = 0.0277316483 * math.log10(50.0) * math.sqrt(math.log((t + 1e-6) / 2e-6))
    assert abs(float((out - g).std()) - read_exp) < Z * read_exp / math.sqrt(2 * n)
    # right after programming: the programmed conductances themselves
    assert torch.equal(relax.conductance_at(g, g, g, 0.0, gen(0)), g)
    # the result stays in [g_min, g_max]
    far = relax.replace(drift_scale=50.0).conductance_at(g, g, g, T_YEAR, gen(103))
    assert float(far.min()) >= 9.0 and float(far.max()) <= 88.2


# ----------------------------------------------------------------------------------------
# User-defined models
# ----------------------------------------------------------------------------------------
def test_docstring_example_runs():
    name = "constant_drift_example"
    NOISE_MODELS._items.pop(name, None)
    try:
        result = doctest.testmod(inference, verbose=False)
        assert result.attempted > 5 and result.failed == 0
    finally:
        NOISE_MODELS._items.pop(name, None)
        _CONFIG_KINDS.pop(name, None)


@dataclass
class _StuckAtZero(NoiseModel):
    """Test model: a fraction of devices is stuck at 0 µS from programming on; no drift."""

    kind = "test_stuck_at_zero"
    p_stuck: float = 0.1

    def validate(self) -> None:
        super().validate()
        self.check_range("p_stuck", 0, 1)

    def programming_noise(self, g, generator):
        stuck = torch.rand(g.shape, generator=generator, dtype=g.dtype, device=g.device) < self.p_stuck
        return torch.where(stuck, torch.zeros_like(g), g)

    def read_noise(self, g, t_inference, generator):
        return (g + 0.01 * randn(g, generator)).clamp(min=0)


def test_user_defined_model_registers_and_works():
    NOISE_MODELS.add("test_stuck_at_zero", _StuckAtZero)
    try:
        model = NOISE_MODELS.get("test_stuck_at_zero")(p_stuck=0.25)
        w = _weights(shape=(200, 100))
        state = model.program(w, gen(1))
        stuck = torch.stack([(gp == 0) & (gt > 0) for gp, gt in zip(state.g_prog, state.g_target)]).sum()
        on = torch.stack([gt > 0 for gt in state.g_target]).sum()
        p = 0.25
        assert abs(float(stuck) / float(on) - p) < Z * math.sqrt(p * (1 - p) / float(on))
        assert model.drifted_weights(state, 10.0, gen(2)).shape == w.shape
        assert _StuckAtZero.from_yaml(model.to_yaml()) == model
        assert type(_Holder.from_dict(_Holder(noise=model).to_dict()).noise) is _StuckAtZero
        with pytest.raises(ValueError, match=r"_StuckAtZero\.p_stuck"):
            _StuckAtZero(p_stuck=2.0)
    finally:
        NOISE_MODELS._items.pop("test_stuck_at_zero", None)


@pytest.mark.parametrize("cls", MODELS)
def test_generator_required(cls):
    model = cls()
    with pytest.raises(TypeError, match=rf"{cls.__name__}.program: generator None"):
        model.program(_weights(), None)
    state = model.program(_weights(), gen(0))
    with pytest.raises(TypeError, match="generator"):
        model.drifted_weights(state, times_for(model)[-1], 1234)
