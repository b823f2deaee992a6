"""Classification's ``evaluate`` and ``predict``: the run's preprocessing, softmax, metrics.

``evaluate`` scores every labelled case of the dataset it is given (``--only val`` is the
engine's subset), with :mod:`medssl.metrics.classification`'s edge-case policy (an AUC that a
one-class set cannot define is ``nan``). For the report it adds the 2D PCA projection of the
embedding the classifier reads (``embedding_2d``) and, for a method that weighs radiomics
features, the features that weigh most (``radiomics_weights``). ``predict`` writes one JSON per
input image: the class probabilities and the predicted class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader
from monai.data import Dataset as MonaiDataset
from sklearn.metrics import confusion_matrix

from medssl.atomic import write_json_atomic
from medssl.data.dataset import Case, Dataset, image_channels
from medssl.data.io import read_header, read_image
from medssl.data.io.image import flip_index_order
from medssl.engine.inference import write_outputs
from medssl.engine.module import MethodModule
from medssl.errors import CheckpointError, ConfigError, DataError, file_error
from medssl.metrics.classification import classification_metrics, per_class_metrics
from medssl.tasks.classification.data import case_record, pipeline
from medssl.tasks.classification.lesion import apply_radiomics
from medssl.tasks.classification.profiles import data_dims_of

EVAL_BATCH = 64
#: radiomics features listed in an evaluation, the heaviest first
TOP_RADIOMICS = 20


def check_compatible(module: MethodModule, dataset: Dataset) -> None:
    """The dataset's dimensions, channels and classes must be the run's."""
    info = module.dataset_info
    problems = []
    if data_dims_of(dataset) != info["data_dims"]:
        problems.append(f"holds {data_dims_of(dataset)}D images, the model {info['data_dims']}D")
    if image_channels(dataset) != info["in_channels"]:
        problems.append(
            f"has {image_channels(dataset)} channel(s), the model expects {info['in_channels']}"
        )
    targets = [c.target for c in dataset.labeled]
    if any(np.ndim(t) != 0 for t in targets):
        problems.append("has multi-label targets; the model predicts one class per image")
    elif targets and max(int(t) for t in targets) >= info["num_classes"]:
        problems.append(f"has class values beyond the model's {info['num_classes']} classes")
    if problems:
        raise file_error(
            dataset.root,
            "; ".join(problems),
            "evaluate on data of the task the run was trained for",
            CheckpointError,
        )


@torch.no_grad()
def embedding(module: MethodModule, batch: dict[str, Any]) -> torch.Tensor | None:
    """``(B, D)``: the embedding the method's classifier reads, its ``joint_embedding`` where it
    has one (BKC-Net: the deep and radiomics views), else the network's pooled features;
    ``None`` for a module with neither."""
    joint = getattr(module, "joint_embedding", None)
    if callable(joint):
        return joint(batch)
    features_and_logits = getattr(module, "features_and_logits", None)
    if callable(features_and_logits):
        return features_and_logits(batch["image"])[0]
    return None


@torch.no_grad()
def scan(
    module: MethodModule, records: list[dict[str, Any]], embed: bool = False
) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, K) class probabilities of ``records`` through the run's preprocessing and, with
    ``embed``, their (N, D) :func:`embedding` from the same batches (``None`` without one)."""
    transform = pipeline(module.dataset_info, module.run_config.data, inputs=module.inputs)
    loader = DataLoader(MonaiDataset(records, transform), batch_size=EVAL_BATCH, shuffle=False)
    probs: list[np.ndarray] = []
    embeddings: list[np.ndarray] | None = [] if embed else None
    for batch in loader:
        batch = {k: v.to(module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        probs.append(module.predict_probs(batch).cpu().numpy())
        if embeddings is not None:
            rows = embedding(module, batch)
            if rows is None:
                embeddings = None
            else:
                embeddings.append(rows.detach().float().flatten(1).cpu().numpy())
    features = np.concatenate(embeddings).astype(np.float64) if embeddings else None
    return np.concatenate(probs).astype(np.float64), features


def probabilities(module: MethodModule, records: list[dict[str, Any]]) -> np.ndarray:
    """(N, K) class probabilities of ``records`` through the run's preprocessing."""
    return scan(module, records)[0]


def project_2d(features: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """(N, 2) coordinates of (N, D) rows on their first two principal components (PCA by SVD
    of the centred rows; each axis signed so that its largest loading is positive, as
    scikit-learn does) and the share of the total variance each explains. An axis the rows do
    not span (a single row, D < 2, identical rows) is 0 and explains 0."""
    x = np.asarray(features, dtype=np.float64)
    x = x.reshape(len(x), -1)
    x = x - x.mean(axis=0)
    coords, ratio = np.zeros((len(x), 2)), [0.0, 0.0]
    if len(x) < 2 or x.shape[1] == 0:
        return coords, ratio
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    total = float(np.sum(s**2))
    if total <= 0.0:
        return coords, ratio
    for k in range(min(2, len(s))):
        sign = 1.0 if vt[k, np.argmax(np.abs(vt[k]))] >= 0 else -1.0
        coords[:, k] = sign * u[:, k] * s[k]
        ratio[k] = float(s[k] ** 2 / total)
    return coords, ratio


def embedding_2d(
    features: np.ndarray, cases: list[Case], labels: list[str], source: str
) -> dict[str, Any] | None:
    """The report's scatter: each case's PCA coordinates, id and true class, the variance share
    of PC1 and PC2, and what was projected; ``None`` when the embedding is not finite."""
    if features.size == 0 or not np.isfinite(features).all():
        return None
    coords, ratio = project_2d(features)
    return {
        "source": source,
        "dim": int(features.reshape(len(features), -1).shape[1]),
        "explained_variance_ratio": [round(r, 6) for r in ratio],
        "case": [c.id for c in cases],
        "label": labels,
        "x": [float(f"{v:.6g}") for v in coords[:, 0]],
        "y": [float(f"{v:.6g}") for v in coords[:, 1]],
    }


def top_radiomics(module: MethodModule, n: int = TOP_RADIOMICS) -> list[list[Any]] | None:
    """The ``n`` radiomics features that weigh most in the method (its ``radiomics_weights()``)
    as ``[name, weight]`` pairs, heaviest first; ``None`` for a method without radiomics."""
    weights = getattr(module, "radiomics_weights", None)
    ranked = weights() if callable(weights) else None
    if not ranked:
        return None
    pairs = sorted(((str(k), float(v)) for k, v in ranked.items()), key=lambda kv: -kv[1])
    return [[name, round(weight, 6)] for name, weight in pairs[:n]]


def dataset_records(module: MethodModule, dataset: Dataset, cases: list[Case]) -> list[dict]:
    """The data dicts of ``cases`` as the run's training built them: with the lesion and the
    radiomics row (standardised with the run's training statistics) when the method reads them."""
    rows = None
    if module.inputs.radiomics is not None:
        stats = module.radiomics_standardisation()
        rows = apply_radiomics(dataset, cases, module.inputs, stats)
    return [case_record(c, module.inputs, rows) for c in cases]


def evaluate(
    run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
) -> dict[str, Any]:
    """Accuracy, AUC, macro F1 and balanced accuracy over every labelled case of ``dataset``,
    per class, per case (label, prediction, probabilities) and the confusion matrix; for the
    report, ``embedding_2d`` (:func:`embedding_2d`) and, for a method that weighs radiomics,
    ``radiomics_weights`` (:func:`top_radiomics`)."""
    if options.get("largest_component") or options.get("units", "auto") != "auto":
        raise ConfigError(
            "--largest-component and --units are segmentation options; drop them for a "
            "classification run"
        )
    check_compatible(module, dataset)
    cases = [c for c in dataset.labeled if c.target is not None]
    if not cases:
        raise file_error(
            dataset.root, "has no labelled case to evaluate", "add a label column", DataError
        )
    names = [str(n) for n in module.dataset_info["class_names"]]
    prob, features = scan(module, dataset_records(module, dataset, cases), embed=True)
    prob = prob / prob.sum(axis=1, keepdims=True)  # float32 softmax rows, summed in float64
    y = np.array([int(c.target) for c in cases])
    pred = prob.argmax(axis=1)
    per_case = {
        case.id: {
            "label": names[y[i]],
            "pred": names[pred[i]],
            **{f"prob_{name}": float(prob[i, k]) for k, name in enumerate(names)},
        }
        for i, case in enumerate(cases)
    }
    matrix = confusion_matrix(y, pred, labels=list(range(len(names))))
    extra: dict[str, Any] = {}
    if features is not None:
        source = "joint embedding" if hasattr(module, "joint_embedding") else "pooled features"
        projected = embedding_2d(features, cases, [names[k] for k in y], source)
        if projected is not None:
            extra["embedding_2d"] = projected
    if (weights := top_radiomics(module)) is not None:
        extra["radiomics_weights"] = weights
    return {
        "task": "classification",
        "run": str(run_dir),
        "data": str(dataset.root),
        "method": module.name,
        "cases": len(cases),
        "mean": classification_metrics(y, prob, names),
        "per_class": per_class_metrics(y, prob, names),
        "per_case": per_case,
        "confusion_matrix": matrix.tolist(),  # rows: true class, columns: predicted
        "class_names": names,
        "units": {},
        **extra,
    }


def image_record(module: MethodModule, path: Path) -> dict[str, Any]:
    """The data dict of one input file, as the run's training saw its cases: a run trained on
    MedMNIST arrays gets the file's pixels in numpy row order (uint8 grey levels expected)."""
    info = module.dataset_info
    if info.get("source") != "array":
        return {"image": str(path), "id": path.name}
    image = read_image(path)
    array = np.array(flip_index_order(image.array, image.spatial_dims))  # writable copy
    if array.ndim == image.spatial_dims + 1 and int(info["in_channels"]) == 1:
        array = array.mean(axis=-1)  # an RGB(A) export of a grey image
    return {"image": np.asarray(array), "id": path.name}


def predict(module: MethodModule, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
    """One ``OUT/<stem>.json`` per input image with its class probabilities and predicted class
    (all or nothing: :func:`medssl.engine.inference.write_outputs`)."""
    if options.get("largest_component"):
        raise ConfigError("--largest-component is a segmentation option; drop it")
    if module.inputs.any:
        raise ConfigError(
            f"method {module.name!r} reads each case's lesion region or its radiomics besides "
            "the image, which medssl computes from a dataset, not from bare image files; score "
            "cases with `medssl evaluate --run RUN --data DIR`"
        )
    info = module.dataset_info
    names = [str(n) for n in info["class_names"]]

    def check(path: Path) -> None:
        header = read_header(path)
        if header.spatial_dims != info["data_dims"]:
            raise file_error(
                path,
                f"is a {header.spatial_dims}D image, the model was trained on "
                f"{info['data_dims']}D images",
                "give images of the kind the run was trained on",
            )

    def write(path: Path, target: Path) -> None:
        prob = probabilities(module, [image_record(module, path)])[0]
        prob = prob / prob.sum()
        k = int(prob.argmax())
        payload = {
            "task": "classification",
            "input": str(path),
            "class_names": names,
            "probabilities": {name: float(p) for name, p in zip(names, prob, strict=True)},
            "predicted_class": names[k],
            "predicted_index": k,
        }
        write_json_atomic(target, payload)

    return write_outputs(inputs, out_dir, ".json", check, write)
