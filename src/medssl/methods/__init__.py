"""Methods, one module each, grouped by family. Importing this package registers them all."""

from medssl.methods import classify, landmarks, pretrain, segment  # noqa: F401
