"""What a radiomics extraction computes: image types, feature classes and pyradiomics settings.

The defaults are the image types BKC-Net's radiomics branch uses (original, Laplacian of
Gaussian at sigma 1-5 mm, wavelet) and every pyradiomics feature class that a lesion mask gives
meaning to; :meth:`RadiomicsSettings.bkc_net` is the paper's own setting (docs: METHODS.md, 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from medssl.errors import ConfigError, file_error

# pyradiomics' names (``radiomics.imageoperations.get<Name>Image``; feature-class modules).
IMAGE_TYPES = (
    "Original",
    "LoG",
    "Wavelet",
    "Square",
    "SquareRoot",
    "Logarithm",
    "Exponential",
    "Gradient",
    "LBP2D",
    "LBP3D",
)
SHAPE_CLASSES = ("shape", "shape2D")
TEXTURE_CLASSES = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")
FEATURE_CLASSES = (*SHAPE_CLASSES, "firstorder", *TEXTURE_CLASSES)
DEFAULT_SIGMAS = [1.0, 2.0, 3.0, 4.0, 5.0]


def _default_image_types() -> dict[str, dict[str, Any]]:
    return {"Original": {}, "LoG": {"sigma": list(DEFAULT_SIGMAS)}, "Wavelet": {}}


def _default_classes() -> list[str]:
    return ["shape", "firstorder", *TEXTURE_CLASSES]


class RadiomicsSettings(BaseModel):
    """One extraction setting; every field is part of the per-case cache key.

    ``feature_classes`` names ``shape`` (or ``shape2D``) for the shape class that fits the image:
    ``shape2D`` is computed on 2-D images, ``shape`` on volumes. ``bin_width`` is the grey-level
    bin width of the texture matrices (pyradiomics' default 25). ``resampled_spacing`` (mm, one
    per axis) resamples image and mask first; ``None`` keeps the image grid. ``force2d`` computes
    texture slice by slice (pyradiomics ``force2D``, slices along the last axis) for volumes with
    thick slices; ``pre_crop`` crops to the mask before filtering (faster, changes LoG/wavelet
    values near the crop border slightly).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    image_types: dict[str, dict[str, Any]] = Field(default_factory=_default_image_types)
    feature_classes: list[str] = Field(default_factory=_default_classes)
    bin_width: float = 25.0
    resampled_spacing: list[float] | None = None
    force2d: bool = False
    pre_crop: bool = False

    @field_validator("image_types", mode="before")
    @classmethod
    def _known_image_types(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):  # ["Original", "Wavelet"]: no options
            value = {name: {} for name in value}
        if not isinstance(value, dict) or not value:
            raise ValueError("give at least one image type, e.g. {Original: {}}")
        types: dict[str, dict[str, Any]] = {}
        for name, options in value.items():
            if name not in IMAGE_TYPES:
                raise ValueError(f"unknown image type {name!r} (known: {', '.join(IMAGE_TYPES)})")
            options = dict(options or {})
            if name == "LoG":
                sigma = options.get("sigma", DEFAULT_SIGMAS)
                sigma = [sigma] if isinstance(sigma, (int, float)) else list(sigma)
                if not sigma or any(float(s) <= 0 for s in sigma):
                    raise ValueError("LoG sigma must be one or more values > 0 (mm)")
                options["sigma"] = [float(s) for s in sigma]  # names read log-sigma-1-0-mm
            types[name] = options
        return types

    @field_validator("feature_classes")
    @classmethod
    def _known_classes(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in FEATURE_CLASSES]
        if unknown:
            raise ValueError(
                f"unknown feature class {unknown[0]!r} (known: {', '.join(FEATURE_CLASSES)})"
            )
        if not value:
            raise ValueError("give at least one feature class")
        return list(dict.fromkeys(value))

    @field_validator("bin_width")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("bin_width must be > 0")
        return value

    @field_validator("resampled_spacing")
    @classmethod
    def _spacing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) not in (2, 3) or any(s <= 0 for s in value)):
            raise ValueError("resampled_spacing is 2 or 3 values > 0 (mm), one per axis")
        return value

    @classmethod
    def bkc_net(cls) -> RadiomicsSettings:
        """BKC-Net's radiomics (METHODS.md 3): original + LoG 1-5 + wavelet; shape, first
        order, GLCM, GLRLM, GLSZM, GLDM (no NGTDM); 1 mm resampling; bin width 25."""
        return cls(
            feature_classes=["shape", "firstorder", "glcm", "glrlm", "glszm", "gldm"],
            resampled_spacing=[1.0, 1.0, 1.0],
        )

    def classes_for(self, dims: int, binary: bool = False) -> list[str]:
        """The feature classes computed on a ``dims``-D image: the shape class that fits it;
        for a binary shape volume (its own mask) only shape and texture."""
        shape = "shape2D" if dims == 2 else "shape"
        classes = [shape if c in SHAPE_CLASSES else c for c in self.feature_classes]
        if binary:
            classes = [c for c in classes if c in SHAPE_CLASSES or c in TEXTURE_CLASSES]
        return list(dict.fromkeys(classes))

    def pyradiomics_settings(self) -> dict[str, Any]:
        """The keyword settings of ``RadiomicsFeatureExtractor`` (mask label 1, no
        diagnostics)."""
        settings: dict[str, Any] = {
            "binWidth": self.bin_width,
            "force2D": self.force2d,
            "force2Ddimension": 0,  # ITK array order: the slice axis comes first
            "preCrop": self.pre_crop,
            "label": 1,
            "additionalInfo": False,
        }
        if self.resampled_spacing is not None:
            settings["resampledPixelSpacing"] = list(self.resampled_spacing)
        return settings


def settings_from(values: dict[str, Any] | None, source: str = "settings") -> RadiomicsSettings:
    """Validate a mapping into :class:`RadiomicsSettings` with a one-line error."""
    try:
        return RadiomicsSettings.model_validate(values or {})
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "settings"
        if first["type"] == "extra_forbidden":
            known = ", ".join(RadiomicsSettings.model_fields)
            raise ConfigError(
                f"{source}: {loc!r} is not a radiomics setting; use one of {known}"
            ) from None
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{source}: invalid value for {loc!r}: {message}; fix it") from None


def read_settings(path: str | Path) -> RadiomicsSettings:
    """The settings in a YAML file (the keys of :class:`RadiomicsSettings`; others refused)."""
    import yaml

    path = Path(path).expanduser()
    if not path.is_file():
        raise file_error(path, "settings file not found", "check the --settings path", ConfigError)
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise file_error(
            path, "not a readable YAML file", "fix its syntax or encoding", ConfigError
        ) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise file_error(path, "settings must be a mapping", "write key: value pairs", ConfigError)
    return settings_from(loaded, str(path))
