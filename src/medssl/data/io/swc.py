"""SWC neuron tracings: one node per line, each linked to a parent node or -1 for a root."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from medssl.atomic import write_text_atomic
from medssl.data.io._common import existing_path, one_line
from medssl.errors import file_error

SWC_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("type", np.int64),
        ("x", np.float64),
        ("y", np.float64),
        ("z", np.float64),
        ("radius", np.float64),
        ("parent", np.int64),
    ]
)
_SWC_COLUMNS = " ".join(SWC_DTYPE.names)


def read_swc(path: str | Path) -> np.ndarray:
    """SWC nodes as a structured array (``SWC_DTYPE``); ``#`` lines are comments.

    Each parent must be -1 (a root) or the id of another node in the file.
    """
    p = existing_path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise file_error(p, f"cannot be read as text ({one_line(err)})", "re-export it") from err
    rows, numbers = [], []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            rows.append(_swc_row(p, number, text))
            numbers.append(number)
    nodes = np.array(rows, dtype=SWC_DTYPE)
    _check_swc_links(p, nodes, numbers)
    return nodes


def _swc_row(path: Path, number: int, text: str) -> tuple:
    fields = text.split()
    if len(fields) != len(SWC_DTYPE.names):
        raise file_error(
            path,
            f"line {number}: {len(fields)} columns, expected 7 ({_SWC_COLUMNS})",
            "fix or delete that line",
        )
    values = []
    for name, token in zip(SWC_DTYPE.names, fields, strict=True):
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        integral = SWC_DTYPE[name].kind == "i"
        if not math.isfinite(value) or (integral and not value.is_integer()):
            kind = "an integer" if integral else "a number"
            raise file_error(
                path, f"line {number}: {name} {token!r} is not {kind}", "fix or delete that line"
            )
        values.append(int(value) if integral else value)
    return tuple(values)


def _check_swc_links(path: Path, nodes: np.ndarray, numbers: list[int]) -> None:
    seen: set[int] = set()
    for node, number in zip(nodes, numbers, strict=True):
        if int(node["id"]) in seen:
            raise file_error(
                path, f"line {number}: duplicate id {node['id']}", "renumber the nodes"
            )
        seen.add(int(node["id"]))
    for node, number in zip(nodes, numbers, strict=True):
        parent = int(node["parent"])
        if parent != -1 and (parent not in seen or parent == int(node["id"])):
            raise file_error(
                path,
                f"line {number}: parent {parent} is not another node's id",
                "use -1 for a root or the id of an existing node",
            )


def write_swc(path: str | Path, nodes: np.ndarray) -> None:
    """Atomic SWC with a column header; floats written exactly (shortest repr)."""
    p = Path(path).expanduser()
    nodes = np.asarray(nodes)
    missing = [n for n in SWC_DTYPE.names if n not in (nodes.dtype.names or ())]
    if missing:
        raise file_error(
            p,
            f"nodes lack the fields {', '.join(missing)}",
            f"pass a structured array with {_SWC_COLUMNS}",
        )
    lines = [f"# {_SWC_COLUMNS}"] + [
        " ".join(
            str(int(node[n])) if SWC_DTYPE[n].kind == "i" else repr(float(node[n]))
            for n in SWC_DTYPE.names
        )
        for node in nodes
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(p, text)
