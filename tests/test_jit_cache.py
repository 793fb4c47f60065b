"""The numba cache guard: cached kernels of a module are dropped when any kernel source changed."""

import os
import types
from pathlib import Path

import pytest

from analogkit import _jit_cache


def _dispatcher(folder, filename):
    """A stand-in for a cache=True numba dispatcher: its cache path and its function's file."""
    code = types.SimpleNamespace(co_filename=filename)
    return types.SimpleNamespace(_cache=types.SimpleNamespace(_cache_path=str(folder)),
                                 py_func=types.SimpleNamespace(__code__=code))


def test_stale_kernels_of_the_module_are_dropped_and_others_kept(tmp_path):
    ours = [tmp_path / "kernels._row_block-12.py311.nbi", tmp_path / "kernels._row_block-12.py311.1.nbc"]
    other = [tmp_path / "kernels_step._row_block_step-40.py311.nbi", tmp_path / "mod.f-1.py311.nbi"]
    for f in ours + other:
        f.write_bytes(b"x")
    disp = _dispatcher(tmp_path, "/pkg/update/kernels.py")
    assert _jit_cache.drop_stale_cache(disp, digest="new")
    assert not any(f.exists() for f in ours)
    assert all(f.exists() for f in other)  # "kernels.*" must not match "kernels_step.*"
    assert (tmp_path / "kernels.sources-digest").read_text() == "new"
    # same sources: what was compiled since is kept
    ours[0].write_bytes(b"y")
    assert not _jit_cache.drop_stale_cache(disp, digest="new")
    assert ours[0].exists()
    # a source changed: dropped again
    assert _jit_cache.drop_stale_cache(disp, digest="newer")
    assert not ours[0].exists()


def test_no_cache_directory_means_nothing_to_do():
    disp = types.SimpleNamespace(_cache=types.SimpleNamespace(), py_func=None)
    assert not _jit_cache.drop_stale_cache(disp, digest="x")


def test_the_digest_covers_every_kernel_source():
    digest = _jit_cache.sources_digest()
    assert len(digest) == 64
    for name in _jit_cache.KERNEL_SOURCES:
        assert (_jit_cache._PACKAGE / name).is_file(), name


def test_the_kernel_modules_stamp_their_cache():
    kernels = pytest.importorskip("analogkit.update.kernels")
    if not kernels.HAVE_NUMBA:
        pytest.skip("numba not installed")
    folder = Path(kernels._count_block._cache._cache_path)
    if not os.access(folder, os.W_OK):
        pytest.skip("the cache directory is not writable: numba compiles in memory")
    assert (folder / "kernels.sources-digest").read_text() == _jit_cache.sources_digest()
