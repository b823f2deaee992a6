"""Landmark methods: the heatmap baseline and CCF-Net.

Every module of this package registers its method on import; importing the package imports them
all, so a new method is one new file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
