"""The semi-supervised family is complete and every method is a benchmark candidate."""

from __future__ import annotations

import pytest

from medssl.bench.protocols import SEMI_SUPERVISED
from medssl.engine.module import get_method, method_names
from medssl.methods.segment.semi import SemiSupervisedMethod


def test_every_benchmarked_method_is_registered():
    assert set(SEMI_SUPERVISED) <= set(method_names("segmentation"))


@pytest.mark.parametrize("name", [m for m in SEMI_SUPERVISED if m != "supervised"])
def test_semi_supervised_methods_use_the_unlabelled_pool(name: str):
    cls = get_method("segmentation", name)
    assert issubclass(cls, SemiSupervisedMethod) and cls.uses_unlabeled
    cls.Config()  # the paper defaults validate on their own


def test_supervised_ignores_the_pool():
    assert not get_method("segmentation", "supervised").uses_unlabeled
