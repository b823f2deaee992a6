"""The malloc settings stop a training loop's large blocks from being page-faulted in every step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from medssl.engine.allocator import uses_glibc

pytestmark = pytest.mark.skipif(not uses_glibc(), reason="glibc's malloc only")

# Ten "steps" that each allocate and then free a few blocks of 8-64 MB, as a 3D training step does
# with its activations and conv buffers (after five steps that grow the heap); print whether the
# settings were applied and the minor page faults of the ten steps.
PROBE = """
import resource
import torch
from medssl.engine.allocator import keep_freed_memory

def step():
    blocks = [torch.ones(mib << 18) for mib in (8, 64, 16, 32)]
    del blocks

applied = keep_freed_memory()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _probe(env: dict[str, str]) -> tuple[bool, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    applied, faults = done.stdout.split()
    return applied == "True", int(faults)


def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    base.pop("GLIBC_TUNABLES", None)
    applied, faults = _probe(base)
    # the user's own glibc setting wins: nothing is changed, glibc's defaults stay
    kept, default_faults = _probe({**base, "GLIBC_TUNABLES": ""})
    assert applied and not kept
    step_pages = (120 << 20) // 4096
    assert default_faults > 5 * step_pages  # glibc maps most of every step's blocks afresh
    assert faults < default_faults / 4  # they are reused from the heap instead
