"""The tile's device state is built once on its buffers and follows them when they are replaced."""

import copy

import torch

from analogkit.compounds import build_config
from analogkit.config import TileConfig
from analogkit.devices import SoftBoundsDevice
from analogkit.nn import AnalogLinear


def _layer(config=None):
    return AnalogLinear(6, 4, config=config or TileConfig(device=SoftBoundsDevice()))


def _step(layer, lr=0.1):
    x = torch.randn(3, 6, generator=torch.Generator().manual_seed(1))
    layer(x).sum().backward()
    layer.tile.apply_update(lr)


def test_device_state_is_built_once_and_writes_reach_the_buffers():
    layer = _layer(build_config("c-ttv2", SoftBoundsDevice()))
    tile = layer.tile
    state = tile.device_state
    assert tile.device_state is state and tile._group_state(0) is tile._group_state(0)
    before = tile.device_d0__w.clone()
    _step(layer)
    assert not torch.equal(tile.device_d0__w, before)  # the update went through the cached views
    assert torch.equal(state.tensors()["d0__w"], tile.device_d0__w)


def test_device_state_follows_replaced_buffers():
    layer = _layer()
    tile = layer.tile
    old = tile.device_state
    layer.double()  # replaces every buffer
    new = tile.device_state
    assert new is not old and new.w.dtype == torch.float64 and new.w is tile.device_w
    tile.device_w = torch.zeros_like(tile.device_w)  # an assignment replaces one buffer
    assert tile.device_state.w is tile.device_w
    tile._group_state(0).w.fill_(0.25)  # the group's views are rebuilt too
    assert bool((tile.device_w == 0.25).all())


def test_copies_get_their_own_state():
    layer = _layer()
    _ = layer.tile.device_state  # fill the cache before copying
    twin = copy.deepcopy(layer)
    assert twin.tile._state_cache is None or twin.tile._state_cache[0][0] is twin.tile.device_w
    assert twin.tile.device_state.w is twin.tile.device_w
    w = layer.tile.device_w.clone()
    _step(twin)
    assert torch.equal(layer.tile.device_w, w)  # the original's devices are untouched
    assert not torch.equal(twin.tile.device_w, w)
