"""Multi-domain 2D sets: ``<domain>/images|masks`` indexed by a dataset.json with ``domains``.

Each centre or device is a domain, so ``--domains`` can train on some and test on others.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medssl.data.dataset import Case, Dataset
from medssl.data.layouts._common import (
    case_id_or_stem,
    dataset_from_json,
    dataset_json,
    fields_except,
    first_ending,
    index_entry,
    read_json,
    resolve,
    resolve_optional,
    unique_ids,
)
from medssl.errors import file_error


def _select_domains(index: Path, known: list[str], domains: Sequence[str] | None) -> list[str]:
    if not domains:
        return known
    unknown = [d for d in domains if d not in known]
    if unknown:
        raise file_error(
            index,
            f"unknown domain(s) {', '.join(unknown)}; known: {', '.join(known)}",
            "choose --domains from the known ones",
        )
    return list(domains)


def _domain_case(root: Path, entry: dict[str, Any]) -> Case:
    """One entry of the training list; every field but the paths and id goes into meta."""
    image = resolve(root, entry["image"])
    return Case(
        id=case_id_or_stem(entry.get("id"), image),
        images=[image],
        label=resolve_optional(root, entry.get("label") or entry.get("mask")),
        meta=fields_except(entry, ("image", "label", "mask", "id")),
    )


def read(root: Path, domains: Sequence[str] | None = None) -> Dataset:
    """``<domain>/images|masks`` indexed by dataset.json ``domains`` + ``training`` entries."""
    meta = dataset_json(root)
    selected = _select_domains(root / "dataset.json", list(meta["domains"]), domains)
    index = root / "dataset.json"
    entries = [index_entry(e, index) for e in meta["training"]]
    entries = [e for e in entries if e.get("domain") in selected]
    cases = unique_ids([_domain_case(root, e) for e in entries], index)
    extra: dict[str, Any] = {"domains": selected}
    if (root / "sequences.json").is_file():
        extra["sequences"] = read_json(root / "sequences.json")
    ending = first_ending((c.images[0] for c in cases), "")
    return dataset_from_json(root, "multidomain", cases, meta, file_ending=ending, extra=extra)
