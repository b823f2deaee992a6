"""SWC tracing sets (bigneuron): ``manifest.json`` items of image, reference and automatic SWCs.

The task is tracing QC, so cases carry the tracings' paths in ``meta`` and no label.
"""

from __future__ import annotations

from pathlib import Path

from medssl.data.dataset import Case, Dataset
from medssl.data.layouts._common import fields_except, read_json, unique_ids
from medssl.errors import file_error


def read(root: Path) -> Dataset:
    """bigneuron: manifest.json items -> image + reference SWC + automatic SWCs per algorithm."""
    index = root / "manifest.json"
    manifest = read_json(index)
    items = manifest.get("items") if isinstance(manifest, dict) else None
    if not isinstance(items, list):
        raise file_error(index, "has no 'items' list", "list one {id, image, swc} per image")
    cases = []
    for item in items:
        meta = fields_except(item, ("id", "image", "swc", "swc_auto"))
        meta["swc"] = root / item["swc"]
        meta["swc_auto"] = {alg: root / p for alg, p in (item.get("swc_auto") or {}).items()}
        cases.append(Case(id=item["id"], images=[root / item["image"]], meta=meta))
    return Dataset(
        root=root,
        layout="swc",
        cases=unique_ids(cases, index),
        task="tracing-qc",
        extra={"manifest": {k: v for k, v in manifest.items() if k != "items"}},
    )
