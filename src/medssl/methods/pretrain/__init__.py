"""Self-supervised pretraining methods (the ``pretrain`` task): VoCo, Rubik's cube+, C2L.

Every module of this package registers its method on import; importing the package imports them
all, so a new method is one new file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")
