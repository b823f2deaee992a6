"""Classification's ``evaluate`` and ``predict``: the run's preprocessing, softmax, metrics.

``evaluate`` scores every labelled case of the dataset it is given (``--only val`` is the
engine's subset), with :mod:`medssl.metrics.classification`'s edge-case policy (an AUC that a
one-class set cannot define is ``nan``). ``predict`` writes one JSON per input image: the class
probabilities and the predicted class.
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
from medssl.data.dataset import Dataset, image_channels
from medssl.data.io import read_header, read_image
from medssl.data.io.image import flip_index_order
from medssl.engine.inference import write_outputs
from medssl.engine.module import MethodModule
from medssl.errors import CheckpointError, ConfigError, DataError, file_error
from medssl.metrics.classification import classification_metrics, per_class_metrics
from medssl.tasks.classification.data import case_record, pipeline
from medssl.tasks.classification.profiles import data_dims_of

EVAL_BATCH = 64


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
def probabilities(module: MethodModule, records: list[dict[str, Any]]) -> np.ndarray:
    """(N, K) class probabilities of ``records`` through the run's preprocessing."""
    transform = pipeline(module.dataset_info, module.run_config.data)
    loader = DataLoader(MonaiDataset(records, transform), batch_size=EVAL_BATCH, shuffle=False)
    out = []
    for batch in loader:
        out.append(module.predict_probs(batch["image"].to(module.device)).cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def evaluate(
    run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
) -> dict[str, Any]:
    """Accuracy, AUC, macro F1 and balanced accuracy over every labelled case of ``dataset``,
    per class, per case (label, prediction, probabilities) and the confusion matrix."""
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
    prob = probabilities(module, [case_record(c) for c in cases])
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
