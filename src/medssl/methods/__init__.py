"""Methods, one module each, grouped by family. Importing this package registers them all."""

from medssl.methods import classify, pretrain, segment  # noqa: F401
