"""analog_summary: tiles, utilisation and parameter split per layer."""

from torch import nn

from analogkit.config import MappingConfig, TileConfig
from analogkit.nn import analog_summary, convert_to_analog


def test_summary_counts_tiles_utilisation_reuse_and_parameters():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 600), nn.Linear(600, 10),
    )
    cfg = TileConfig(mapping=MappingConfig(max_input_size=256, max_output_size=256))
    analog = convert_to_analog(model, cfg)
    s = analog_summary(analog, (3, 6, 6))
    rows = {r.name: r for r in s.layers}
    conv, dw, fc1, fc2 = rows["0"], rows["3"], rows["5"], rows["6"]
    assert conv.matrix == (8, 27) and conv.n_tiles == 1 and conv.mvms_per_sample == 36
    assert abs(conv.utilization - 8 * 27 / 256**2) < 1e-12
    assert dw.groups == 8 and dw.n_tiles == 8 and dw.matrix == (1, 9) and dw.mvms_per_sample == 16
    assert fc1.grid == (3, 1) and fc1.n_tiles == 3  # 600 outputs over 256-row tiles
    assert abs(fc1.utilization - 600 * 128 / (3 * 256 * 256)) < 1e-12
    assert fc2.grid == (1, 3) and fc2.mvms_per_sample == 1
    assert fc1.analog_params == 600 * 128 and fc1.digital_params == 600  # digital bias
    assert s.digital_only_params == 16  # BatchNorm weight and bias
    assert s.total_params == sum(p.numel() for p in analog.parameters())
    assert s.n_tiles == 1 + 8 + 3 + 3
    text = str(s)
    assert "AnalogConv2d" in text and "15 tiles" in text


def test_analog_bias_counts_as_analog():
    analog = convert_to_analog(nn.Linear(10, 4), TileConfig(mapping=MappingConfig(digital_bias=False)))
    row = analog_summary(analog, (10,)).layers[0]
    assert row.matrix == (4, 11) and row.analog_params == 44 and row.digital_params == 0
