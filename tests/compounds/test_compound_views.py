"""Consecutive vectors through views: the same reads, writes and transfers as through index copies."""

from __future__ import annotations

import pytest
import torch

from analogkit.compounds import BufferedTransferCompound, ChoppedTransferCompound, DynamicTransferCompound
from analogkit.compounds import buffered as buffered_module
from analogkit.compounds.base import apply_counts_, as_index, put_, read_columns, take
from analogkit.config import IOConfig
from analogkit.devices import SoftBoundsDevice
from analogkit.optim import AnalogSGD
from analogkit.periphery.mvm import TileGrid, analog_mvm
from analogkit.update import UpdateConfig
from compound_testkit import gen, layer_for


def noisy_soft_bounds(write_noise: float = 0.0) -> SoftBoundsDevice:
    """Soft bounds with cycle-to-cycle and device-to-device variation (every pulse draws)."""
    return SoftBoundsDevice(dw_min=0.02, dw_min_std=0.3, write_noise_std=write_noise)


def test_as_index_gives_slices_for_consecutive_vectors_only():
    assert as_index([3, 4, 5], "cpu") == slice(3, 6)
    assert as_index([7], "cpu") == slice(7, 8)
    for run in ([5, 4], [0, 2, 3], [6, 7, 0]):
        idx = as_index(run, "cpu")
        assert isinstance(idx, torch.Tensor) and idx.tolist() == run


@pytest.mark.parametrize("dim", [0, 1])
def test_take_and_put_on_slices_agree_with_index_tensors(dim):
    t = torch.arange(20.0).reshape(4, 5)
    pick = torch.tensor([1, 2])
    before = t.index_select(dim, pick)
    view = take(t, slice(1, 3), dim)
    torch.testing.assert_close(view, before)
    view.mul_(-1.0)  # a view: writes go through; put_ of that very view changes nothing more
    put_(t, slice(1, 3), dim, view)
    torch.testing.assert_close(t.index_select(dim, pick), -before)
    put_(t, slice(1, 3), dim, torch.full_like(view, 7.0))
    put_(t, torch.tensor([0]), dim, torch.full_like(t.index_select(dim, torch.tensor([0])), 9.0))
    assert (t.index_select(dim, pick) == 7.0).all() and (t.index_select(dim, torch.tensor([0])) == 9.0).all()
    untouched = torch.tensor([3])
    assert torch.equal(t.index_select(dim, untouched), torch.arange(20.0).reshape(4, 5).index_select(dim, untouched))


def _one_hot_read(device, state, index, io, generator, columns):
    """The read as one MVM of one-hot inputs over the whole array (what read_columns stands for)."""
    w = device.apparent_weight(state)
    w = w if columns else w.t().contiguous()
    idx = index if isinstance(index, torch.Tensor) else torch.arange(index.start, index.stop)
    x = torch.zeros((idx.numel(), 1, w.shape[1]), dtype=w.dtype)
    x[torch.arange(idx.numel()), 0, idx] = 1.0
    return analog_mvm(x, w.unsqueeze(0), TileGrid.for_matrix(w.shape[0], w.shape[1], 0, 0), io, generator)[:, 0]


READ_IOS = {
    "default": IOConfig(),  # abs_max noise management, iterative bound management
    "plain": IOConfig(noise_management="none", bound_management="none"),
    "saturating": IOConfig(out_bound=0.3, out_noise=0.01),  # bound management re-reads rows
    "pcm_weight_noise": IOConfig(w_noise=0.02, w_noise_type="pcm_read"),
    "ideal": IOConfig(ideal=True),
    "input_noise": IOConfig(inp_noise=0.05),  # not one-hot after the DAC: the whole array is read
    "stochastic_rounding": IOConfig(inp_sto_round=True),
}


@pytest.mark.parametrize("io_name", sorted(READ_IOS))
@pytest.mark.parametrize("columns", [True, False])
@pytest.mark.parametrize("index", [slice(2, 6), torch.tensor([6, 1, 3])])
def test_read_of_selected_vectors_equals_the_one_hot_read_of_the_array(io_name, columns, index):
    dev = noisy_soft_bounds(write_noise=1.0)
    state = dev.build_state((7, 9), gen(0))
    dev.set_weights(state, 0.4 * torch.randn(7, 9, generator=gen(1)), gen(2))
    io = READ_IOS[io_name]
    g_new, g_ref = gen(3), gen(3)
    y = read_columns(dev, state, index, io, g_new, columns)
    ref = _one_hot_read(dev, state, index, io, g_ref, columns)
    assert torch.equal(y, ref)
    assert torch.equal(g_new.get_state(), g_ref.get_state())  # the same draws


@pytest.mark.parametrize("columns", [True, False])
@pytest.mark.parametrize("k_max", [1, 3])
def test_counts_on_a_slice_equal_counts_on_the_index_tensor(columns, k_max):
    dev = noisy_soft_bounds(write_noise=1.0)
    shape = (6, 8)
    s_ref = dev.build_state(shape, gen(0))
    s_new = s_ref.clone()
    sub_shape = (shape[0], 3) if columns else (3, shape[1])
    counts = torch.randint(-k_max, k_max + 1, sub_shape, generator=gen(1), dtype=torch.int32)
    apply_counts_(dev, s_new, counts, gen(2), index=slice(2, 5), columns=columns)
    apply_counts_(dev, s_ref, counts, gen(2), index=torch.tensor([2, 3, 4]), columns=columns)
    for name, t in s_ref.tensors().items():
        assert torch.equal(s_new.tensors()[name], t), name


def _pair() -> list[SoftBoundsDevice]:
    return [noisy_soft_bounds(), noisy_soft_bounds()]


def _transfer_compounds() -> dict[str, BufferedTransferCompound]:
    plain = IOConfig(noise_management="none", bound_management="none")
    return {
        "c-ttv2": ChoppedTransferCompound(unit_cell_devices=_pair(), transfer_forward=plain, auto_scale=True,
                                          fast_lr=0.5, transfer_lr=20.0, out_chop_prob=0.2),
        "c-ttv2-rows": ChoppedTransferCompound(unit_cell_devices=_pair(), transfer_forward=plain,
                                               transfer_columns=False, in_chop_random=False, forget_buffer=False,
                                               momentum=0.3, transfer_lr=20.0, n_reads_per_transfer=3),
        "agad": DynamicTransferCompound(unit_cell_devices=_pair(), in_chop_prob=0.5, in_chop_random=True,
                                        transfer_lr=20.0),
        "agad-regular": DynamicTransferCompound(unit_cell_devices=_pair(), in_chop_prob=0.5, transfer_lr=20.0,
                                                forget_buffer=False, buffer_cap=2.0, transfer_columns=False),
        "ttv2": BufferedTransferCompound(unit_cell_devices=_pair(), transfer_forward=plain, units_in_mbatch=False,
                                         transfer_lr=20.0, momentum=0.2),
    }


@pytest.mark.parametrize("name", sorted(_transfer_compounds()))
def test_transfers_through_views_equal_transfers_through_index_copies(name, monkeypatch):
    """Every run of consecutive reads (slices, views) against the same runs as index tensors (copies)."""
    def train(force_tensors: bool) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if force_tensors:
            monkeypatch.setattr(buffered_module, "as_index",
                                lambda run, device: torch.tensor(list(run), dtype=torch.int64, device=device))
        layer = layer_for(_transfer_compounds()[name], in_features=7, out_features=5, seed=4,
                          update=UpdateConfig(desired_bl=5))
        slow_before = layer.tile.device_state.w.clone()  # the slow array's weight (γ = 0)
        opt = AnalogSGD(layer.parameters(), lr=0.1)
        g = gen(5)
        for _ in range(40):  # 10 samples per step: runs wrap around the 7 (or 5) vectors
            x = torch.randn(10, 7, generator=g)
            opt.zero_grad()
            torch.nn.functional.mse_loss(layer(x), torch.randn(10, 5, generator=g)).backward()
            opt.step()
        monkeypatch.undo()
        return {k: v.clone() for k, v in layer.tile.device_state.tensors().items()}, slow_before

    (views, slow_before), (copies, _) = train(False), train(True)
    assert torch.count_nonzero(views["w"] - slow_before) > 0  # transfers did write to C
    for k, t in copies.items():
        assert torch.equal(views[k], t), k
