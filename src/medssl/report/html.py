"""Build ``RUN/report.html``: one self-contained page summarising a medssl run.

The page is plain HTML with inline CSS, no JavaScript and no network access, so it opens
from a cluster scratch folder or an e-mail attachment alike. Every input except
``config.yaml`` is optional: a run is reported at any stage and the page says what is
missing and which command produces it. Everything is staged in a temporary folder inside
the run and moved into place only when the whole page rendered, so a crash never leaves a
half-written report.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from medssl.engine.task import get_task
from medssl.errors import MedsslError
from medssl.metrics.direction import has_direction, higher_is_better, worst_first
from medssl.report import overlays, plots
from medssl.report.evaluation_plots import EVALUATION_PLOTS
from medssl.report.html_parts import (
    CSS,
    _e,
    _figure,
    _flatten,
    _fmt,
    _is_list,
    _mean_line,
    _note,
    _num,
    _one_line,
    _overlaps,
    _safe,
    _score_table,
    _table,
    _warn,
)

MAX_OVERLAYS = 8
#: Per-case tables longer than this start collapsed so the page stays scannable.
OPEN_CASE_ROWS = 30
NOT_A_RUN_FIX = "not a medssl run directory; pass the RUN folder given to medssl train --out"


# --------------------------------------------------------------------------- entry point


@dataclass
class _Evaluation:
    """One ``evaluation*.json`` file, already parsed."""

    path: Path
    data: dict


@dataclass
class Page:
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
        if not evaluations and self._evaluates():
            self.missing.append(f"not evaluated yet: run {self._evaluate_command()}")
        return evaluations

    def _evaluates(self) -> bool:
        """Whether this run's task is scored by ``evaluate`` (pretraining is not)."""
        task = self.config.get("task")
        try:
            return get_task(str(task)).evaluates if task else True
        except MedsslError:  # an unknown task: say what evaluate would say
            return True

    def _evaluate_command(self) -> str:
        return f"medssl evaluate --run {self.run_dir} --data DIR"

    # ---- rendering

    def render(self) -> str:
        """The full page; sections render before the summary so it can list their gaps."""
        sections = [
            self._curves_section(),
            self._pretext_section(),
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
        ]
        if self._evaluates():  # pretraining reads no labels: a budget would mislead
            facts.append(("labeled", _e(self.config.get("labeled") or "all")))
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

    def _pretext_section(self) -> str:
        """What a pretraining run's encoder learned (``RUN/pretext_summary.npz``), if anything."""
        from medssl.report.pretext import pretext_section

        return pretext_section(self.run_dir, self.plots_dir, self.missing)

    def _evaluation_section(self) -> str:
        parts = ["<h2>Evaluation</h2>"]
        if not self.evaluations and not self._evaluates():
            note = f"a pretraining run is judged by fine-tuning: medssl train --init {self.run_dir}"
            return "\n".join(parts + [_note(note)])
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
        parts += self._task_plots(evaluation)
        parts.append(self._per_case(evaluation, units))
        return "\n".join(parts)

    def _task_plots(self, evaluation: _Evaluation) -> list[str]:
        """The plots the run's task asks for (classification: ROC curves, confusion matrix, the
        embedding's 2D projection, the radiomics that weigh most)."""
        try:
            names = get_task(str(self.config.get("task"))).report_sections
        except MedsslError:  # a run of a task this version does not know: no task plots
            return []
        figures = []
        for name in names:
            draw, caption = EVALUATION_PLOTS[name]
            png = draw(
                evaluation.data, self.plots_dir / f"{name}_{_safe(evaluation.path.stem)}.png"
            )
            if png is not None:
                figures.append(_figure(png, caption))
        return [f'<div class="grid">{"".join(figures)}</div>'] if figures else []

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
                png = overlays.plot_overlay(npz, self.plots_dir / f"overlay_{_safe(npz.stem)}.png")
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
