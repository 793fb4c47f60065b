"""Keep numba's on-disk kernel cache in step with all the sources a kernel is compiled from.

numba keys a cached function on the contents of its own file only. Our kernels inline functions
from other modules (the Gaussian generator of :mod:`analogkit.periphery.kernels` is compiled into
the update kernels, the shared group helpers of :mod:`analogkit.update.kernels` into the step
kernel), so after an edit or an upgrade that changed only an inlined module, numba would load
machine code built from the old source. Each kernel module therefore calls
:func:`drop_stale_cache` before any of its kernels runs: it compares a digest of all kernel
sources with the stamp left beside the module's cache files and, when they differ, deletes the
module's cached kernels (they are recompiled on first use) and writes the new stamp.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent
KERNEL_SOURCES = ("periphery/kernels.py", "update/kernels.py", "update/kernels_step.py")


@functools.lru_cache(maxsize=1)
def sources_digest() -> str:
    """SHA-256 over the contents of every kernel source file, in a fixed order."""
    digest = hashlib.sha256()
    for name in KERNEL_SOURCES:
        digest.update(name.encode())
        digest.update((_PACKAGE / name).read_bytes())
    return digest.hexdigest()


def drop_stale_cache(dispatcher: Any, digest: str | None = None) -> bool:
    """Delete the cached kernels of ``dispatcher``'s module if they were built from other sources.

    ``dispatcher`` is any ``cache=True`` numba function of the module; ``digest`` defaults to
    :func:`sources_digest`. Returns whether files were dropped. A cache directory that cannot be
    read or written is left alone (numba then compiles in memory, as it does without a cache).
    """
    cache_path = getattr(getattr(dispatcher, "_cache", None), "_cache_path", None)
    if cache_path is None:
        return False
    digest = sources_digest() if digest is None else digest
    stem = Path(dispatcher.py_func.__code__.co_filename).stem
    folder = Path(cache_path)
    stamp = folder / f"{stem}.sources-digest"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        for cached in folder.glob(f"{stem}.*.nb[ic]"):  # "kernels.*" does not match "kernels_step.*"
            cached.unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)
    except OSError:
        return False
    return True
