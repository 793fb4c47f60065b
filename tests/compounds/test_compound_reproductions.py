"""Small fixed-seed versions of the two reproductions in examples/ (P1 response functions, P2 offsets)."""

from __future__ import annotations

import pytest

from compound_testkit import load_example


@pytest.fixture(scope="module")
def response_functions():
    return load_example("response_functions")


@pytest.fixture(scope="module")
def offsets():
    return load_example("offsets")


def test_asymmetry_biases_analog_sgd_but_not_tiki_taka(response_functions):
    # Wu et al. 2025: the symmetric point away from the optimum biases Analog SGD more as the asymmetry
    # grows; Tiki-Taka with a zero-shifted fast array reaches the optimum (error at the pulse-noise floor).
    # One seed, 300 steps (both settle within ~200; the error is the mean of the last 100 steps).
    run = response_functions.run
    sgd_sym, sgd_asym = (run("analog-sgd", c, seed=0, steps=300, tail=100) for c in (0.0, 0.4))
    tt_asym = run("tiki-taka", 0.4, seed=0, steps=300, tail=100)
    assert sgd_asym > 1.5 * sgd_sym, (sgd_sym, sgd_asym)
    assert tt_asym < 0.5 * sgd_asym, (tt_asym, sgd_asym)
    assert tt_asym < 0.05, tt_asym


def test_chopped_ttv2_and_agad_beat_ttv2_at_a_large_reference_offset(offsets):
    # Rasch et al. 2024: with reference offsets of σ_r = 0.6 (30 % of the weight range) TTv2 drifts;
    # the chopper (c-TTv2) and the dynamic reference (AGAD) cancel the offset. 5 epochs, one seed.
    acc = {alg: offsets.run(alg, 0.6, seed=0, epochs=5) for alg in ("ttv2", "c-ttv2", "agad")}
    assert acc["c-ttv2"] > acc["ttv2"] + 0.05, acc
    assert acc["agad"] > acc["ttv2"] + 0.05, acc
