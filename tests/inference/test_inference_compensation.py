"""Drift-compensation factors (pure functions)."""

from __future__ import annotations

import pytest
import torch

from analogkit.inference import (
    DRIFT_EPS,
    PCMLikeNoise,
    global_drift_factor,
    per_column_drift_factor,
    reference_inputs,
)


def test_global_factor_undoes_uniform_decay():
    y_ref = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    alpha = global_drift_factor(y_ref, 0.8 * y_ref)
    assert alpha.dim() == 0
    torch.testing.assert_close(alpha, torch.tensor(1.25))


def test_global_factor_eps_guard():
    zeros = torch.zeros(4, 3)
    assert float(global_drift_factor(zeros, zeros)) == 1.0
    y = torch.full((4, 3), 0.5)
    torch.testing.assert_close(global_drift_factor(y, zeros), torch.tensor(0.5 / DRIFT_EPS))
    torch.testing.assert_close(global_drift_factor(y, zeros, eps=0.1), torch.tensor(5.0))


def test_per_column_factor():
    y_ref = torch.ones(6, 3)
    y_t = y_ref * torch.tensor([0.5, 1.0, 0.25])
    torch.testing.assert_close(per_column_drift_factor(y_ref, y_t), torch.tensor([2.0, 1.0, 4.0]))
    y_t[:, 1] = 0.0
    assert float(per_column_drift_factor(y_ref, y_t)[1]) == pytest.approx(1.0 / DRIFT_EPS)
    # batched reads: average over every dimension but the last
    torch.testing.assert_close(per_column_drift_factor(y_ref[None].expand(2, 6, 3), y_t[None].expand(2, 6, 3)),
                               per_column_drift_factor(y_ref, y_t))


def test_shape_and_eps_checks():
    with pytest.raises(ValueError, match="same shape"):
        global_drift_factor(torch.ones(2, 3), torch.ones(3, 2))
    with pytest.raises(ValueError, match="eps"):
        per_column_drift_factor(torch.ones(2), torch.ones(2), eps=0.0)
    with pytest.raises(ValueError, match="in_size"):
        reference_inputs(0)


def test_one_hot_reference_read_of_drifted_pcm():
    # the reference read is forward(eye(in_size)); here with an ideal MVM y = x Wᵀ
    w = torch.randn(10, 32, generator=torch.Generator().manual_seed(1))
    x = reference_inputs(32)
    torch.testing.assert_close(x, torch.eye(32))
    model = PCMLikeNoise()
    gen = torch.Generator().manual_seed(2)
    state = model.program(w, gen)
    y_ref = x @ model.drifted_weights(state, 0.0, gen).T
    y_t = x @ model.drifted_weights(state, 30 * 86400.0, gen).T
    alpha = global_drift_factor(y_ref, y_t)
    assert float(alpha) > 1.2  # a month of drift (ν ≈ 0.05–0.1) lowers |y| by ~30–50 %
    torch.testing.assert_close((alpha * y_t).abs().mean(), y_ref.abs().mean())
    alpha_c = per_column_drift_factor(y_ref, y_t)
    assert alpha_c.shape == (10,)
    torch.testing.assert_close((alpha_c * y_t).abs().mean(0), y_ref.abs().mean(0))
