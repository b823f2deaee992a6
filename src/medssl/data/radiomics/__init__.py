"""Radiomics as a feature source: pyradiomics on an image and its lesion mask, 2D and 3D.

``settings`` (what is computed: image types, feature classes, bin width, resampling),
``masks`` (the lesion: a mask file, a lesion position, or the binary volume itself),
``extract`` (one case, cached as one JSON per case) and ``table`` (a dataset's table,
standardised on the training cases only; ``medssl data radiomics``). pyradiomics comes from the
``pyradiomics-bhklab`` distribution (``pip install 'medssl[radiomics]'``) and is imported only
when features are computed.
"""

from medssl.data.radiomics.extract import CaseFeatures, cache_key, extract_case, extract_features
from medssl.data.radiomics.masks import (
    SELF_MASK,
    LesionPosition,
    is_binary_volume,
    positions_from_csv,
)
from medssl.data.radiomics.settings import RadiomicsSettings, read_settings, settings_from
from medssl.data.radiomics.table import (
    RadiomicsTable,
    Standardisation,
    dataset_table,
    describe_columns,
    export_table,
    standardise,
)

__all__ = [
    "SELF_MASK",
    "CaseFeatures",
    "LesionPosition",
    "RadiomicsSettings",
    "RadiomicsTable",
    "Standardisation",
    "cache_key",
    "dataset_table",
    "describe_columns",
    "export_table",
    "extract_case",
    "extract_features",
    "is_binary_volume",
    "positions_from_csv",
    "read_settings",
    "settings_from",
    "standardise",
]
