"""Every analog convolution variant equals torch.nn.functional.conv* under the floating-point config.

The analog path (im2col patches → tile MVM per group → reshape) is always taken; the
floating-point config only makes the tile's MVM exact, so these tests check the patch
extraction, padding modes, grouping and reshaping.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from analogkit.config import IOConfig, MappingConfig, TileConfig
from analogkit.nn import AnalogConv1d, AnalogConv2d, AnalogConv3d

FP = TileConfig.floating_point()
LAYERS = {1: (AnalogConv1d, F.conv1d, (11,)), 2: (AnalogConv2d, F.conv2d, (9, 10)), 3: (AnalogConv3d, F.conv3d, (6, 7, 5))}
VARIANTS = [
    dict(),
    dict(stride=2),
    dict(dilation=2, padding=2),
    dict(stride=(2, 1, 1), kernel_size=(3, 2, 1)),
    dict(padding="same"),
    dict(padding="valid"),
    dict(groups=2, padding=1),
    dict(groups=4, padding=1, padding_mode="circular"),  # depthwise: one input channel per group
    dict(padding=1, padding_mode="reflect", bias=False),
    dict(padding=2, padding_mode="replicate", stride=2, dilation=2),
    dict(padding="same", padding_mode="reflect", dilation=2, groups=2),
]


def reference(layer, x):
    """F.conv* with the same weights; non-zero padding modes padded explicitly as nn.Conv*d does."""
    nd = layer._nd
    pads = layer._pad_amounts()
    padding = 0
    if layer.padding_mode != "zeros":
        x = F.pad(x, pads, mode=layer.padding_mode)
    elif layer.padding in ("same", "valid"):
        padding = layer.padding
    else:
        padding = layer.padding
    return LAYERS[nd][1](x, layer.weight, layer.bias, layer.stride, padding, layer.dilation, layer.groups)


@pytest.mark.parametrize("nd,variant", list(itertools.product([1, 2, 3], range(len(VARIANTS)))))
def test_conv_matches_functional(nd, variant):
    torch.manual_seed(nd * 100 + variant)
    cls, _, spatial = LAYERS[nd]
    kw = dict(VARIANTS[variant])
    ks = kw.pop("kernel_size", 3)
    if isinstance(ks, tuple):
        ks = ks[:nd]
    if "stride" in kw and isinstance(kw["stride"], tuple):
        kw["stride"] = kw["stride"][:nd]
    layer = cls(4, 8, ks, config=FP, **kw)
    x = torch.randn(3, 4, *spatial)
    y = layer(x)
    ref = reference(layer, x)
    assert y.shape == ref.shape
    assert torch.allclose(y, ref, atol=1e-5)
    # the same module converted back to digital agrees too
    assert torch.allclose(layer.to_digital()(x), ref, atol=1e-5)


def test_depthwise_conv_many_groups_and_gradients():
    torch.manual_seed(0)
    layer = AnalogConv2d(16, 32, 3, padding=1, groups=16, config=FP)
    x = torch.randn(2, 16, 6, 6, requires_grad=True)
    y = layer(x)
    ref_layer = layer.to_digital()
    x2 = x.detach().clone().requires_grad_(True)
    ref = ref_layer(x2)
    assert torch.allclose(y, ref, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    ref.backward(g)
    assert torch.allclose(x.grad, x2.grad, atol=1e-5)
    assert torch.allclose(layer.weight.grad, ref_layer.weight.grad, atol=1e-4)
    assert torch.allclose(layer.bias.grad, ref_layer.bias.grad, atol=1e-4)
    assert layer.tile.n_tiles == 16


def test_conv_large_patch_is_tiled():
    # 64·3·3 = 576 inputs per patch > 512: two column tiles; noiseless unquantised IO still exact
    torch.manual_seed(1)
    io = IOConfig(inp_res=0, out_res=0, out_noise=0, out_bound=1e6)
    layer = AnalogConv2d(64, 8, 3, config=TileConfig(forward=io, backward=io, mapping=MappingConfig()))
    assert (layer.tile.grid.rows, layer.tile.grid.cols) == (1, 2)
    x = torch.randn(2, 64, 5, 5)
    assert torch.allclose(layer(x), layer.to_digital()(x), atol=1e-4)


def test_unbatched_input():
    layer = AnalogConv1d(2, 3, 3, config=FP)
    x = torch.randn(2, 9)
    assert torch.allclose(layer(x), layer.to_digital()(x), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(groups=3), r"AnalogConv2d.groups: 3 is not allowed; in_channels \(4\) and out_channels \(8\) must both be divisible"),
        (dict(padding_mode="mirror"), r"AnalogConv2d.padding_mode: 'mirror' is not allowed; use one of zeros, reflect"),
        (dict(stride=0), r"AnalogConv2d.stride: 0 is not allowed"),
        (dict(padding="full"), r"AnalogConv2d.padding: 'full' is not allowed"),
        (dict(padding="same", stride=2), r"'same' is not allowed with stride"),
        (dict(kernel_size=(3, 3, 3)), r"AnalogConv2d.kernel_size: \(3, 3, 3\) is not allowed; use an integer >= 1 or a tuple of 2"),
    ],
)
def test_invalid_arguments(kwargs, match):
    args = dict(in_channels=4, out_channels=8, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        AnalogConv2d(**args)


def test_wrong_input_shape_names_expected_shape():
    layer = AnalogConv2d(4, 8, 3)
    with pytest.raises(ValueError, match=r"use \(N, 4, \*2 spatial dims\)"):
        layer(torch.randn(2, 3, 8, 8))
