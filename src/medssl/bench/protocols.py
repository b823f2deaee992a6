"""The named protocols. Published numbers: ../shared/docs/BENCHMARKS.md."""

from __future__ import annotations

from medssl.bench.base import Benchmark, register

# LA2018 supervised baseline: the V-Net of the UA-MT protocol on 8 labelled cases; CPU profile
# at half resolution (1.25 mm) so that it finishes in tens of minutes on two cores.
LA_SUPERVISED = register(
    Benchmark(
        name="la-supervised",
        description="LA2018, supervised only, first 8 of the 64 training cases labelled; "
        "validation = 16 seeded cases of the 80",
        data="la2018",
        task="segmentation",
        methods=["supervised"],
        labeled=8,
        configs={
            "gpu": {
                "net": {"name": "vnet"},
                "data": {"patch_size": [112, 112, 80], "val_cases": 16, "labeled_order": "first"},
                "train": {"max_steps": 6000, "val_every": 500},
            },
            "cpu": {
                "data": {
                    "patch_size": [64, 64, 48],
                    "target_spacing": [1.25, 1.25, 1.25],
                    "val_cases": 16,
                    "labeled_order": "first",
                },
                "net": {"name": "unet", "channels": [16, 32, 64, 128], "num_res_units": 1},
                "train": {"max_steps": 1500, "val_every": 250},
            },
        },
        published={"V-Net supervised, 8 labelled (Dice %)": 82.74, "source": "BENCHMARKS.md"},
        units="voxel",
    )
)
