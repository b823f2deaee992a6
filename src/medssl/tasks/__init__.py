"""Task plugins, one module or package each; importing this package registers them all.

A task tells the engine how its data become batches, which value picks the best checkpoint, and
what ``evaluate``, ``predict``, the report and the bench show (:class:`medssl.engine.task.Task`).
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
