"""Segmentation methods: supervised baseline and (later) the semi-supervised family."""

from medssl.methods.segment import supervised  # noqa: F401
