"""The pieces every report page is made of: its style sheet and small HTML builders.

Kept apart from :mod:`medssl.report.html`, which decides what a run's page says.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.1em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-bottom: 0.3em; }
.sub { color: #666; margin-top: 0; font-family: monospace; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; vertical-align: top; }
th { background: #f3f5f8; }
tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; font-family: monospace; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.5em 0.8em; }
.warn { background: #fdecea; border-left: 4px solid #d93025; padding: 0.5em 0.8em; }
.summary { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.5em; }
.summary dt { font-weight: 600; }
.summary dd { margin: 0; }
figure { margin: 0.8em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.grid { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
code, pre { font-family: monospace; background: #f6f8fa; }
pre { padding: 0.8em; overflow-x: auto; }
details { margin: 0.5em 0; }
summary { cursor: pointer; }
"""


# --------------------------------------------------------------------------- html helpers


def _e(value: object) -> str:
    """Escape any value for HTML text or attribute context."""
    return html.escape(str(value), quote=True)


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _warn(text: str) -> str:
    return f'<p class="warn">{_e(text)}</p>'


def _figure(png: Path, caption: str) -> str:
    """An <img> linking the plot by its path relative to report.html."""
    src = quote(f"plots/{png.name}")
    text = _e(caption)
    return f'<figure><img src="{src}" alt="{text}"><figcaption>{text}</figcaption></figure>'


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table from already-escaped cells; cells made by :func:`_num` keep their class."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _score_table(key_name: str, scores: Mapping, units: Mapping) -> str:
    """Rows of ``{name: {metric: value}}``; headers carry units (``hd95 (mm)``)."""
    metrics = list(dict.fromkeys(m for s in scores.values() if isinstance(s, Mapping) for m in s))
    header = [key_name] + [f"{m} ({units[m]})" if units.get(m) else str(m) for m in metrics]
    rows = [
        [_e(name)] + [_num(s.get(m)) if isinstance(s, Mapping) else "" for m in metrics]
        for name, s in scores.items()
    ]
    return _table(header, rows)


def _num(value: object) -> str:
    """A right-aligned numeric cell."""
    return f'<td class="num">{_e(_fmt(value))}</td>'


def _fmt(value: object) -> str:
    """Numbers for reading: 3 decimals, integers as such, NaN/inf/None spelled out."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:.1f}"


def _mean_line(evaluation: Mapping) -> str:
    """``dice 0.812 · hd95 4.100 mm`` for the summary."""
    mean = evaluation.get("mean")
    if not isinstance(mean, Mapping) or not mean:
        return "no mean scores"
    units = evaluation.get("units") if isinstance(evaluation.get("units"), Mapping) else {}
    return " · ".join(
        f"{_e(m)} <strong>{_e(_fmt(v))}</strong>{' ' + _e(units[m]) if units.get(m) else ''}"
        for m, v in mean.items()
    )


# --------------------------------------------------------------------------- data helpers


def _is_list(value: object) -> bool:
    return isinstance(value, list | tuple)


def _flatten(config: Mapping, prefix: str = "") -> list[tuple[str, str]]:
    """``{"method_config": {"ema_decay": 0.99}}`` -> ``[("method_config.ema_decay", "0.99")]``."""
    items: list[tuple[str, str]] = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items += _flatten(value, f"{name}.")
        elif _is_list(value) or isinstance(value, Mapping):
            items.append((name, json.dumps(value, default=str)))
        else:
            items.append((name, "null" if value is None else str(value)))
    return items


def _overlaps(lists: Mapping[str, list[str]]) -> list[str]:
    """Cases that sit in two subsets at once: a labeled case in val inflates the scores."""
    names = list(lists)
    warnings = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = sorted(set(lists[a]) & set(lists[b]))
            if shared:
                shown = ", ".join(shared[:10]) + (" …" if len(shared) > 10 else "")
                warnings.append(f"{len(shared)} case(s) in both {a} and {b}: {shown}")
    return warnings


def _safe(name: str) -> str:
    """A file-name-safe version of a case id."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())
