"""On-chip (pulsed) training through AnalogSGD: layers, optimizer, schedulers, checkpoints, devices."""

import io as _io

import pytest
import torch
from torch import nn

import analogkit
from analogkit.config import IOConfig, MappingConfig, TileConfig
from analogkit.devices import DEVICE_PRESETS, DEVICES, build_preset
from analogkit.devices.constant_step import ConstantStepDevice
from analogkit.nn import AnalogConv2d, AnalogLinear, convert_to_analog
from analogkit.optim import AnalogSGD
from analogkit.update.config import UpdateConfig

QUIET = IOConfig.perfect()


def pulsed(device=None, **kw):
    return TileConfig(forward=QUIET, backward=QUIET, device=device or ConstantStepDevice(), **kw)


def test_pulsed_layer_has_no_weight_parameter_and_weight_is_the_device_state():
    layer = AnalogLinear(6, 4, config=pulsed())
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"bias", "tile.update_handle"}
    assert layer.tile.update_handle.numel() == 0
    assert layer.weight.data_ptr() == layer.tile.device_w.data_ptr()
    # the initial weight lies within every element's bounds
    st = layer.tile.device_state
    assert ((st.w >= st.w_min) & (st.w <= st.w_max)).all()


def test_step_applies_pulses_with_the_expected_mean_update():
    # constant step without variation: E[ΔW] = −lr·d xᵀ exactly (each coincidence moves dw_min)
    dev = ConstantStepDevice(dw_min=0.001, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    analogkit.manual_seed(0)
    layer = AnalogLinear(8, 4, bias=False, config=pulsed(dev))
    layer.set_weight(torch.zeros(4, 8))
    opt = AnalogSGD(layer.parameters(), lr=0.01)
    x = torch.rand(1, 8) * 0.5 + 0.5
    g = torch.rand(1, 4) * 0.5 + 0.5
    reps = 400
    total = torch.zeros(4, 8)
    for _ in range(reps):
        layer.set_weight(torch.zeros(4, 8))
        opt.zero_grad()
        (layer(x) * g).sum().backward()
        opt.step()
        total += layer.weight.detach()
    mean = total / reps
    expected = -0.01 * g.T @ x
    # each element: count ~ binomial-like with ≤ 31 slots, std ≤ sqrt(31)/2·dw_min ≈ 2.8e-3 per rep;
    # SE over 400 reps ≤ 1.4e-4: allow 5 SE
    assert torch.allclose(mean, expected, atol=7e-4)
    assert (mean < 0).all()


def test_lr_scheduler_changes_the_pulsed_update():
    analogkit.manual_seed(1)
    layer = AnalogLinear(16, 8, bias=False, config=pulsed(ConstantStepDevice(dw_min_dtod=0.0, dw_min_std=0.0)))
    opt = AnalogSGD(layer.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.0 + 1e-9)
    x, g = torch.rand(32, 16), torch.rand(32, 8)

    def step():
        before = layer.weight.detach().clone()
        opt.zero_grad()
        (layer(x) * g).sum().backward()
        opt.step()
        return (layer.weight.detach() - before).abs().sum().item()

    assert step() > 0
    sched.step()
    assert step() == 0  # lr ≈ 1e-11: no pulses at all


def test_digital_bias_and_other_params_follow_sgd():
    analogkit.manual_seed(2)
    model = nn.Sequential(AnalogLinear(5, 3, config=pulsed()), nn.Linear(3, 2))
    opt = AnalogSGD(model.parameters(), lr=0.1, momentum=0.9)
    b0, w1 = model[0].bias.detach().clone(), model[1].weight.detach().clone()
    model(torch.randn(4, 5)).sum().backward()
    opt.step()
    assert not torch.equal(model[0].bias, b0) and not torch.equal(model[1].weight, w1)


def test_zero_grad_discards_recorded_updates_and_eval_records_nothing():
    layer = AnalogLinear(5, 3, config=pulsed())
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    layer(torch.randn(2, 5)).sum().backward()
    assert layer.tile.has_pending_update
    opt.zero_grad()
    assert not layer.tile.has_pending_update
    layer.eval()
    with torch.no_grad():
        layer(torch.randn(2, 5))
    assert not layer.tile.has_pending_update


def test_first_layer_without_input_gradient_still_updates():
    layer = AnalogLinear(4, 2, bias=False, config=pulsed())
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    w0 = layer.weight.detach().clone()
    x = torch.ones(8, 4)  # no requires_grad
    layer(x).sum().backward()
    opt.step()
    assert not torch.equal(layer.weight, w0)


def save_load(obj):
    buf = _io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _train_steps(model, opt, n, seed):
    torch.manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(8, 1, 6, 6), torch.randint(0, 3, (8,))
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("preset", list(DEVICE_PRESETS))
def test_every_device_preset_trains_and_round_trips_a_checkpoint(preset):
    cfg = TileConfig(device=build_preset(preset))

    def build():
        return convert_to_analog(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)), cfg)

    analogkit.manual_seed(5)
    a = build()
    opt = AnalogSGD(a.parameters(), lr=0.05)
    w0 = a[2].weight.detach().clone()
    _train_steps(a, opt, 2, 0)
    assert not torch.equal(a[2].weight, w0), "pulses must change the weights"
    st = a[2].tile.device_state
    assert ((st.w >= st.w_min - 1e-6) & (st.w <= st.w_max + 1e-6)).all()
    state = save_load(a.state_dict())
    analogkit.manual_seed(6)
    b = build()
    b.load_state_dict(state)
    for k, v in a.state_dict().items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, b.state_dict()[k]), k
    opt_b = AnalogSGD(b.parameters(), lr=0.05)
    _train_steps(a, opt, 2, 1)
    _train_steps(b, opt_b, 2, 1)
    assert torch.equal(a[2].weight, b[2].weight) and torch.equal(a[0].weight, b[0].weight)


@pytest.mark.parametrize("kind", list(DEVICES))
def test_every_registered_device_kind_trains_a_layer(kind):
    analogkit.manual_seed(7)
    layer = AnalogLinear(12, 6, config=TileConfig(device=DEVICES.get(kind)()))
    opt = AnalogSGD(layer.parameters(), lr=0.1)
    w0 = layer.weight.detach().clone()
    for _ in range(2):
        opt.zero_grad()
        layer(torch.randn(16, 12)).pow(2).sum().backward()
        opt.step()
    assert not torch.equal(layer.weight, w0)


def test_pulsed_config_restrictions_are_clear_errors():
    with pytest.raises(ValueError, match="MappingConfig.digital_bias: False is not allowed with a pulsed device"):
        AnalogLinear(3, 2, config=pulsed(mapping=MappingConfig(digital_bias=False)))
    with pytest.raises(ValueError, match="weight_scaling_omega: 1.0 is not allowed with a pulsed device"):
        AnalogLinear(3, 2, config=pulsed(mapping=MappingConfig(weight_scaling_omega=1.0)))


def test_deepcopy_of_a_pulsed_model_trains_its_own_copy():
    import copy

    a = AnalogLinear(4, 3, config=pulsed())
    b = copy.deepcopy(a)
    opt = AnalogSGD(b.parameters(), lr=0.5)
    wa = a.weight.detach().clone()
    b(torch.ones(4, 4)).sum().backward()
    opt.step()
    assert torch.equal(a.weight, wa) and not torch.equal(b.weight, wa)


def test_conv_pulsed_training_updates_every_group():
    layer = AnalogConv2d(4, 4, 3, groups=2, config=pulsed())
    opt = AnalogSGD(layer.parameters(), lr=0.5)
    w0 = layer.weight.detach().clone()
    layer(torch.randn(2, 4, 5, 5)).sum().backward()
    opt.step()
    changed = (layer.weight != w0).reshape(2, 2, -1).any(-1).any(-1)
    assert changed.all()


def test_programming_a_pulsed_model_for_inference_after_training():
    from analogkit.inference import drift, program

    layer = AnalogLinear(16, 8, config=pulsed())
    program(layer)
    drift(layer, 3600.0)
    layer.eval()
    assert layer(torch.randn(3, 16)).shape == (3, 8)
