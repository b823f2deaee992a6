"""Keep freed memory in the process: glibc's defaults make CPU training fault it in every step.

PyTorch's CPU allocator takes every tensor from ``malloc``. With glibc's defaults a large block is
mapped fresh from the kernel and unmapped when freed (above the mmap threshold), and free memory
at the top of the heap is trimmed back to the kernel, so a 3D training step that allocates and
frees the same few hundred MB of activations and convolution buffers page-faults all of it in
again on every step: 65 000 minor faults and 0.15 s of kernel time per step of a 64x64x48 UNet at
batch 4 on one core (docs/RESULTS.md). Fixed thresholds keep those blocks in the heap for reuse;
peak memory is unchanged (it is the same blocks), only not handed back between steps.

Users who set glibc's own knobs (``MALLOC_*_`` variables or ``GLIBC_TUNABLES``) keep theirs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap and are reused
MMAP_THRESHOLD_OLD_GLIBC = 32 << 20  # the most older glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1 << 30  # up to 1 GiB free at the heap's top stays in the process (an int)

_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def uses_glibc() -> bool:
    """Linux with glibc; musl, macOS and Windows have other allocators with other defaults."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@functools.cache  # once per process: glibc reads its own settings only at start-up too
def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds; False where they do not apply or the user set them."""
    if not uses_glibc():
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    mmap_ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) or libc.mallopt(
        M_MMAP_THRESHOLD, MMAP_THRESHOLD_OLD_GLIBC
    )
    trim_ok = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap_ok and trim_ok)
