"""medssl: label-efficient medical image analysis behind one CLI and one Python API."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # The API pulls in torch and MONAI: import it only when used, so ``import medssl`` is cheap.
    if name in {"train", "evaluate", "predict", "methods", "plan"}:
        from medssl import api

        return getattr(api, name)
    raise AttributeError(name)
