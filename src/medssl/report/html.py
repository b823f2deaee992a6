"""Build ``RUN/report.html``: one self-contained page summarising a medssl run.

The page is plain HTML with inline CSS, no JavaScript and no network access, so it opens
from a cluster scratch folder or an e-mail attachment alike. Every input except
``config.yaml`` is optional: a run is reported at any stage and the page says what is
missing and which command produces it. Everything is staged in a temporary folder inside
the run and moved into place only when the whole page rendered, so a crash never leaves a
half-written report.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import yaml

from medssl.atomic import output_error, write_text_atomic
from medssl.errors import CheckpointError, MedsslError, OutputError, file_error
from medssl.metrics.direction import has_direction, higher_is_better, worst_first
from medssl.report import plots

MAX_OVERLAYS = 8
#: Per-case tables longer than this start collapsed so the page stays scannable.
OPEN_CASE_ROWS = 30
NOT_A_RUN_FIX = "not a medssl run directory; pass the RUN folder given to medssl train --out"

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


# --------------------------------------------------------------------------- entry point


def build_report(run_dir: str | Path) -> Path:
    """Write ``RUN/report.html`` and ``RUN/plots/*.png`` for a run; return the html path.

    Raises :class:`CheckpointError` when ``run_dir`` is not a run (no ``config.yaml``) or
    cannot be written. Any other failure propagates and leaves earlier outputs untouched.
    """
    run_dir = Path(run_dir)
    config = _load_config(run_dir)
    try:
        staging = Path(tempfile.mkdtemp(prefix=".report-", dir=run_dir))
    except OSError as err:
        raise _unwritable(run_dir, err) from err
    try:
        page = _Page(run_dir=run_dir, plots_dir=staging / "plots", config=config)
        staged_html = staging / "report.html"
        try:
            write_text_atomic(staged_html, page.render())  # flushed and read back
        except OSError as err:  # a full disk while staging: nothing was published
            raise _unwritable(run_dir, err) from None
        except OutputError as err:  # a staged file did not read back: name the report
            cause = str(err).split("cannot be written: ", 1)[-1]
            raise OutputError(f"{run_dir / 'report.html'}: cannot be written: {cause}") from None
        return _publish(staging, staged_html, run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _load_config(run_dir: Path) -> dict:
    """Read the one required file; anything else is not a run the report can describe."""
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise file_error(run_dir, "no config.yaml", NOT_A_RUN_FIX, CheckpointError)
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        problem = f"unreadable config.yaml ({_one_line(err)})"
        raise file_error(config_path, problem, "re-run medssl train", CheckpointError) from err
    if not isinstance(config, dict):
        problem = "config.yaml is not a mapping"
        raise file_error(config_path, problem, "re-run medssl train", CheckpointError)
    return config


def _publish(staging: Path, staged_html: Path, run_dir: Path) -> Path:
    """Move the staged plots, then the page, into the run; the page goes last so it never
    references a plot that is not there yet."""
    target_plots = run_dir / "plots"
    target_html = run_dir / "report.html"
    try:
        target_plots.mkdir(exist_ok=True)
        for png in sorted((staging / "plots").glob("*.png")):
            os.replace(png, target_plots / png.name)
        os.replace(staged_html, target_html)
    except OSError as err:
        raise _unwritable(run_dir, err) from err
    return target_html


def _unwritable(run_dir: Path, err: OSError) -> MedsslError:
    """The one-line error for a run folder the report cannot write into ("disk full" named)."""
    return output_error(run_dir / "report.html", err)


# --------------------------------------------------------------------------- page model


@dataclass
class _Evaluation:
    """One ``evaluation*.json`` file, already parsed."""

    path: Path
    data: dict


@dataclass
class _Page:
    """Everything read from a run, rendered section by section.

    ``missing`` collects one line per absent or unusable input; the summary lists them so a
    reader sees at a glance what stage the run is at.
    """

    run_dir: Path
    plots_dir: Path
    config: dict
    missing: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.plots_dir.mkdir(parents=True, exist_ok=True)
        self.split = self._read_json(self.run_dir / "split.json", "no case split (split.json)")
        self.series = self._read_series()
        self.evaluations = self._read_evaluations()
        self.comparison = self._read_json(self.run_dir / "comparison.json", None)

    # ---- reading

    def _read_json(self, path: Path, absent: str | None) -> dict | None:
        """Parse an optional JSON mapping; note it as missing (``absent``) or unusable."""
        if not path.is_file():
            if absent:
                self.missing.append(absent)
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            self.missing.append(f"{path.name} is unreadable ({_one_line(err)})")
            return None
        if not isinstance(data, dict):
            self.missing.append(f"{path.name} is not a JSON object")
            return None
        return data

    def _read_series(self) -> dict:
        """Logged training curves, or ``{}`` with a note when there is no usable log."""
        metrics_csv = self.run_dir / "metrics.csv"
        if not metrics_csv.is_file():
            self.missing.append("no training log (metrics.csv): train with medssl train --out RUN")
            return {}
        try:
            series = plots.read_metric_series(metrics_csv)
        except MedsslError as err:
            self.missing.append(str(err))
            return {}
        if not series:
            self.missing.append("metrics.csv holds no logged values yet")
        return series

    def _read_evaluations(self) -> list[_Evaluation]:
        """All ``evaluation*.json`` files, ``evaluation.json`` first."""
        paths = sorted(
            self.run_dir.glob("evaluation*.json"), key=lambda p: (p.stem != "evaluation", p.name)
        )
        evaluations = []
        for path in paths:
            data = self._read_json(path, None)
            if data is not None:
                evaluations.append(_Evaluation(path, data))
        if not evaluations:
            self.missing.append(f"not evaluated yet: run {self._evaluate_command()}")
        return evaluations

    def _evaluate_command(self) -> str:
        return f"medssl evaluate --run {self.run_dir} --data DIR"

    # ---- rendering

    def render(self) -> str:
        """The full page; sections render before the summary so it can list their gaps."""
        sections = [
            self._curves_section(),
            self._evaluation_section(),
            self._comparison_section(),
            self._overlay_section(),
            self._split_section(),
            self._config_section(),
        ]
        title = self._title()
        return "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en">',
                "<head>",
                '<meta charset="utf-8">',
                f"<title>{_e(title)}</title>",
                f"<style>{CSS}</style>",
                "</head>",
                "<body>",
                f"<h1>{_e(title)}</h1>",
                f'<p class="sub">{_e(self.run_dir.resolve())}</p>',
                self._summary_section(),
                *sections,
                "</body>",
                "</html>",
                "",
            ]
        )

    def _title(self) -> str:
        method = self.config.get("method", "unknown method")
        task = self.config.get("task", "unknown task")
        return f"{method} · {task} · {self._dataset_name()}"

    def _data_path(self) -> str:
        """The dataset folder: ``data_dir`` in a medssl run config (``data`` holds its settings)."""
        path = self.config.get("data_dir") or self.config.get("data")
        return str(path) if isinstance(path, str | Path) and str(path) else ""

    def _seed(self) -> object:
        train = self.config.get("train")
        return train.get("seed", "—") if isinstance(train, dict) else self.config.get("seed", "—")

    def _dataset_name(self) -> str:
        dataset = self.config.get("dataset")
        if dataset:
            return str(dataset)
        path = self._data_path()
        return Path(path).name or path if path else "unknown dataset"

    def _summary_section(self) -> str:
        facts: list[tuple[str, str]] = [
            ("method", _e(self.config.get("method", "—"))),
            ("task", _e(self.config.get("task", "—"))),
            ("data", f"<code>{_e(self._data_path() or '—')}</code>"),
            ("seed", _e(self._seed())),
            ("labeled", _e(self.config.get("labeled") or "all")),
        ]
        if self.split:
            counts = ", ".join(f"{len(v)} {_e(k)}" for k, v in self.split.items() if _is_list(v))
            facts.append(("cases", counts or "—"))
        facts += self._training_facts()
        for evaluation in self.evaluations:
            facts.append((f"{evaluation.path.name}", _mean_line(evaluation.data)))
        rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        parts = ["<h2>Summary</h2>", f'<dl class="summary">{rows}</dl>']
        if self.missing:
            items = "".join(f"<li>{_e(m)}</li>" for m in self.missing)
            parts.append(
                f'<div class="note"><strong>Missing from this run:</strong><ul>{items}</ul></div>'
            )
        return "\n".join(parts)

    def _training_facts(self) -> list[tuple[str, str]]:
        """Last logged step, final training loss and the best/final validation scores."""
        if not self.series:
            return []
        last_step = max(int(x[-1]) for x, _ in self.series.values())
        facts = [("logged up to step", str(last_step))]
        for name in ("train/loss", "train_loss"):
            if name in self.series:
                facts.append((f"final {name}", _fmt(float(self.series[name][1][-1]))))
                break
        for name, (x, y) in sorted(self.series.items()):
            if name.lower().startswith("val") and has_direction(name):
                best = int(y.argmax() if higher_is_better(name) else y.argmin())
                text = f"best {_fmt(float(y[best]))} at step {int(x[best])}"
                facts.append((_e(name), f"{text}; final {_fmt(float(y[-1]))}"))
        return facts

    def _curves_section(self) -> str:
        parts = ["<h2>Learning curves</h2>"]
        if not self.series:
            return "\n".join(parts + [_note("no learning curves: metrics.csv is absent or empty")])
        for png in plots.plot_learning_curves(self.run_dir / "metrics.csv", self.plots_dir):
            parts.append(_figure(png, plots.GROUP_TITLES[png.stem.removeprefix("curves_")]))
        return "\n".join(parts)

    def _evaluation_section(self) -> str:
        parts = ["<h2>Evaluation</h2>"]
        if not self.evaluations:
            return "\n".join(parts + [_note(f"not evaluated yet: run {self._evaluate_command()}")])
        for evaluation in self.evaluations:
            parts.append(self._one_evaluation(evaluation))
        return "\n".join(parts)

    def _one_evaluation(self, evaluation: _Evaluation) -> str:
        data = evaluation.data
        units = data.get("units") if isinstance(data.get("units"), Mapping) else {}
        parts = [f"<h3>{_e(evaluation.path.name)}</h3>"]
        if data.get("data"):
            parts.append(f"<p>evaluated on <code>{_e(data['data'])}</code></p>")
        if data.get("policy"):
            parts.append(f"<p><em>Empty-mask policy:</em> {_e(data['policy'])}</p>")
        mean = data.get("mean")
        if isinstance(mean, Mapping) and mean:
            rows = [[_e(m), _num(v), _e(units.get(m, ""))] for m, v in mean.items()]
            parts += ["<h4>Mean over cases</h4>", _table(["metric", "value", "unit"], rows)]
        per_class = data.get("per_class")
        if isinstance(per_class, Mapping) and per_class:
            parts += ["<h4>Per class</h4>", _score_table("class", per_class, units)]
        parts.append(self._per_case(evaluation, units))
        return "\n".join(parts)

    def _per_case(self, evaluation: _Evaluation, units: Mapping) -> str:
        """Per-case plot beside a table sorted worst case first by the metric's direction
        (lowest Dice or AUC, highest HD95 or MRE); unsorted when the direction is not known."""
        per_case = evaluation.data.get("per_case")
        if not isinstance(per_case, Mapping) or not per_case:
            return _note("no per-case scores in this evaluation")
        metric, values = plots.per_case_values(evaluation.data)
        ranked = has_direction(metric)
        order = worst_first(values, metric) if ranked else []
        listed = set(order)
        order += [c for c in per_case if c not in listed]  # unscored or unranked cases last
        sorting = f"worst {_e(metric)} first" if ranked else "in file order"
        name = f"per_case_{_safe(evaluation.path.stem)}.png"
        png = plots.plot_per_case(evaluation.data, self.plots_dir / name, metric)
        table = _score_table("case", {c: per_case[c] for c in order}, units)
        details = (
            f"<details{' open' if len(per_case) <= OPEN_CASE_ROWS else ''}>"
            f"<summary>Per-case scores ({len(per_case)} cases, {sorting})</summary>"
            f"{table}</details>"
        )
        figure = _figure(png, f"per-case {metric}") if png else ""
        return f'<h4>Per case</h4><div class="grid">{figure}<div>{details}</div></div>'

    def _comparison_section(self) -> str:
        parts = ["<h2>Method comparison</h2>"]
        rows = self.comparison.get("rows") if self.comparison else None
        if not rows or not _is_list(rows):
            note = "no comparison.json (written by the demo's supervised-vs-other comparison)"
            return "\n".join(parts + [_note(note)])
        rows = [r for r in rows if isinstance(r, Mapping)]
        metrics = self.comparison.get("metrics")
        if not _is_list(metrics):
            metrics = [k for k in rows[0] if k not in ("method", "run", "labeled")] if rows else []
        header = ["method", "run", "labeled", *metrics]
        body = [
            [_e(r.get("method", "")), _e(r.get("run", "")), _e(r.get("labeled", ""))]
            + [_num(r.get(m)) for m in metrics]
            for r in rows
        ]
        png = plots.plot_comparison(
            rows, [str(m) for m in metrics], self.plots_dir / "comparison.png"
        )
        parts.append(_table(header, body))
        if png:
            parts.append(_figure(png, "comparison by label budget"))
        return "\n".join(parts)

    def _overlay_section(self) -> str:
        parts = ["<h2>Slice overlays</h2>"]
        npzs = sorted((self.run_dir / "overlays").glob("*.npz"))
        if not npzs:
            note = f"no slice overlays: {self._evaluate_command()} writes them to RUN/overlays/"
            return "\n".join(parts + [_note(note)])
        if len(npzs) > MAX_OVERLAYS:
            parts.append(f"<p>Showing {MAX_OVERLAYS} of {len(npzs)} cases.</p>")
        metric, scores = self._first_per_case()
        for npz in npzs[:MAX_OVERLAYS]:
            try:
                png = plots.plot_overlay(npz, self.plots_dir / f"overlay_{_safe(npz.stem)}.png")
            except MedsslError as err:
                self.missing.append(str(err))
                parts.append(_note(str(err)))
                continue
            score = f" — {metric} {_fmt(scores[npz.stem])}" if npz.stem in scores else ""
            parts.append(_figure(png, npz.stem + score))
        return "\n".join(parts)

    def _first_per_case(self) -> tuple[str, dict[str, float]]:
        """(metric, per-case values) of the first evaluation, for overlay captions."""
        if not self.evaluations:
            return "", {}
        return plots.per_case_values(self.evaluations[0].data)

    def _split_section(self) -> str:
        parts = ["<h2>Case split</h2>"]
        if not self.split:
            present = (self.run_dir / "split.json").is_file()
            note = "split.json is unusable; see the summary" if present else "no split.json"
            return "\n".join(parts + [_note(f"{note}: medssl train writes the case split")])
        lists = {k: [str(i) for i in v] for k, v in self.split.items() if _is_list(v)}
        rows = [[_e(k), _num(len(v))] for k, v in lists.items()]
        rows += [[_e(k), _e(v)] for k, v in self.split.items() if k not in lists]
        parts.append(_table(["subset", "cases"], rows))
        parts += [_warn(w) for w in _overlaps(lists)]
        for key, ids in lists.items():
            parts.append(
                f"<details><summary>{_e(key)} ({len(ids)})</summary>"
                f"<p><code>{_e(', '.join(ids))}</code></p></details>"
            )
        return "\n".join(parts)

    def _config_section(self) -> str:
        rows = [[f"<code>{_e(k)}</code>", _e(v)] for k, v in _flatten(self.config)]
        raw = yaml.safe_dump(self.config, sort_keys=False, default_flow_style=False)
        return "\n".join(
            [
                "<h2>Configuration</h2>",
                _table(["key", "value"], rows),
                f"<details><summary>config.yaml</summary><pre>{_e(raw)}</pre></details>",
            ]
        )


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
