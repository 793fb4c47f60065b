"""AnalogLinear: exactness under the floating-point config, mapping, bias, gradients, devices."""

import pytest
import torch
from torch import nn

from analogkit.config import IOConfig, MappingConfig, TileConfig
from analogkit.nn import AnalogLinear

FP = TileConfig.floating_point()
NOISELESS = IOConfig(inp_res=0, out_res=0, out_noise=0, out_bound=1e6)


def test_floating_point_matches_nn_linear_forward_and_backward():
    torch.manual_seed(0)
    ref = nn.Linear(30, 20)
    layer = AnalogLinear.from_digital(ref, FP)
    x = torch.randn(7, 5, 30, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    y, y2 = layer(x), ref(x2)
    assert torch.allclose(y, y2, atol=1e-6)
    g = torch.randn_like(y)
    y.backward(g)
    y2.backward(g)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
    assert torch.allclose(layer.weight.grad, ref.weight.grad, atol=1e-5)
    assert torch.allclose(layer.bias.grad, ref.bias.grad, atol=1e-5)


def test_state_dict_keys_match_nn_linear_so_digital_weights_load():
    ref = nn.Linear(6, 4)
    layer = AnalogLinear(6, 4, config=FP)
    missing, unexpected = layer.load_state_dict(ref.state_dict(), strict=False)
    assert unexpected == [] and missing == ["tile._extra_state"]
    assert torch.equal(layer.weight, ref.weight)


def test_gradients_are_straight_through_the_noisy_forward():
    # ∂L/∂W = Σ d xᵀ from the input, whatever the forward noise and quantisation
    torch.manual_seed(1)
    cfg = TileConfig(backward=IOConfig.perfect())
    layer = AnalogLinear(10, 5, bias=False, config=cfg)
    x = torch.randn(8, 10)
    g = torch.randn(8, 5)
    layer(x).backward(g)
    assert torch.allclose(layer.weight.grad, g.T @ x, atol=1e-5)


def test_noisy_backward_reads_through_the_backward_periphery():
    torch.manual_seed(2)
    cfg = TileConfig(forward=IOConfig.perfect(), backward=IOConfig(out_noise=0.1, out_res=0, inp_res=0))
    layer = AnalogLinear(50, 40, bias=False, config=cfg)
    x = torch.randn(400, 50, requires_grad=True)
    g = torch.randn(400, 40)
    layer(x).backward(g)
    exact = g @ layer.weight.detach()
    alpha = g.abs().amax(1, keepdim=True)
    # backward noise σ = 0.1 in units of max|d|; 20 000 samples ⇒ relative SE 0.5 %, allow 4 %
    assert ((x.grad - exact) / alpha).std().item() == pytest.approx(0.1, rel=0.04)


def test_analog_bias_is_an_extra_column_and_goes_through_the_periphery():
    torch.manual_seed(3)
    io = IOConfig(inp_res=0, out_res=0, out_noise=0, out_bound=1e6)
    cfg = TileConfig(forward=io, backward=io, mapping=MappingConfig(digital_bias=False))
    layer = AnalogLinear(511, 8, config=cfg)
    assert layer.tile.grid.in_size == 512 and layer.tile.n_tiles == 1
    x = torch.randn(4, 511)
    assert torch.allclose(layer(x), layer.to_digital()(x), atol=1e-5)
    # with an ADC the bias is quantised with the rest of the column
    q = TileConfig(forward=IOConfig(out_noise=0, out_res=1 / 10, inp_res=0, out_bound=4, bound_management="none"),
                   mapping=MappingConfig(digital_bias=False))
    qlayer = AnalogLinear(3, 2, config=q)
    with torch.no_grad():
        qlayer.weight.zero_()
        qlayer.bias.fill_(0.33)
    x = torch.zeros(1, 3)  # α = max(|x|, 1) = 1 from the bias input; step 0.8 ⇒ 0.33 rounds to 0.0
    assert torch.allclose(qlayer(x), torch.zeros(1, 2))


@pytest.mark.parametrize("columnwise", [False, True])
def test_weight_scaling_maps_max_weight_to_omega_and_restores_output(columnwise):
    torch.manual_seed(4)
    cfg = TileConfig(forward=NOISELESS, mapping=MappingConfig(weight_scaling_omega=0.6, weight_scaling_columnwise=columnwise))
    layer = AnalogLinear(20, 6, config=cfg)
    with torch.no_grad():
        layer.weight.mul_(torch.arange(1, 7).float()[:, None])
    scales = layer.tile.mapping_scales(layer.weight.unsqueeze(0))
    mapped = layer.weight.unsqueeze(0) / scales
    if columnwise:
        assert torch.allclose(mapped.abs().amax(-1), torch.full((1, 6), 0.6))
    else:
        assert mapped.abs().max().item() == pytest.approx(0.6)
    x = torch.randn(5, 20)
    assert torch.allclose(layer(x), layer.to_digital()(x), atol=1e-5)


def test_weight_scaling_refers_output_noise_to_the_mapped_range():
    # With ω scaling, noise σ_out in tile units becomes σ_out·m in output units (m = max|W|/ω)
    torch.manual_seed(5)
    io = IOConfig(inp_res=0, out_res=0, out_noise=0.05, noise_management="none", bound_management="none")
    cfg = TileConfig(forward=io, mapping=MappingConfig(weight_scaling_omega=1.0))
    layer = AnalogLinear(16, 200, bias=False, config=cfg)
    with torch.no_grad():
        layer.weight.normal_(0, 1).clamp_(-2.5, 2.5)
        layer.weight[0, 0] = 2.5  # max|W| = 2.5 ⇒ m = 2.5
    x = torch.rand(500, 16) * 2 - 1  # inside the DAC range (no noise management)
    err = layer(x) - x @ layer.weight.T
    # 100 000 samples: relative SE 0.2 %; allow 3 %
    assert err.std().item() == pytest.approx(0.05 * 2.5, rel=0.03)


@pytest.mark.parametrize("columnwise", [False, True])
def test_learned_out_scales_are_parameters_that_train(columnwise):
    cfg = TileConfig(forward=NOISELESS, mapping=MappingConfig(learn_out_scaling=True, out_scaling_columnwise=columnwise))
    layer = AnalogLinear(4, 3, config=cfg)
    assert layer.tile.out_scales.shape == ((3,) if columnwise else (1,))
    names = {n for n, _ in layer.named_parameters()}
    assert names == {"weight", "bias", "tile.out_scales"}
    x = torch.randn(5, 4)
    base = layer(x).detach()
    with torch.no_grad():
        layer.tile.out_scales.fill_(2.0)
    assert torch.allclose(layer(x), 2 * (base - layer.bias) + layer.bias, atol=1e-5)
    layer(x).sum().backward()
    assert layer.tile.out_scales.grad is not None


def test_invalid_sizes_and_config_type():
    with pytest.raises(ValueError, match=r"AnalogLinear.in_features: 0 is not allowed; use an integer >= 1"):
        AnalogLinear(0, 3)
    with pytest.raises(TypeError, match="config: expected a TileConfig"):
        AnalogLinear(3, 3, config={"forward": {}})


def test_double_precision_and_leading_dims():
    layer = AnalogLinear(8, 4, dtype=torch.float64)
    y = layer(torch.randn(2, 3, 8, dtype=torch.float64))
    assert y.dtype == torch.float64 and y.shape == (2, 3, 4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_moves_generator_and_runs():
    layer = AnalogLinear(8, 4).cuda()
    assert layer.tile.generator.device.type == "cuda"
    assert layer(torch.randn(2, 8, device="cuda")).device.type == "cuda"
