"""The EMA teacher: moves toward the student at the declared rate, never by gradients."""

from __future__ import annotations

import torch
from torch import nn

from medssl.engine.ema import ema_update, make_teacher, ramped_decay


def test_teacher_is_a_frozen_copy():
    student = nn.Linear(3, 2)
    teacher = make_teacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert torch.equal(teacher.weight, student.weight)
    assert teacher.weight.data_ptr() != student.weight.data_ptr()


def test_ema_update_is_the_convex_combination():
    student = nn.Linear(2, 1, bias=False)
    teacher = make_teacher(student)
    with torch.no_grad():
        teacher.weight.fill_(1.0)
        student.weight.fill_(3.0)
    ema_update(student, teacher, decay=0.75)
    assert torch.allclose(teacher.weight, torch.full_like(teacher.weight, 0.75 * 1 + 0.25 * 3))


def test_buffers_are_copied():
    student = nn.BatchNorm1d(2)
    teacher = make_teacher(student)
    student.running_mean.fill_(5.0)
    ema_update(student, teacher, decay=0.99)
    assert torch.equal(teacher.running_mean, student.running_mean)


def test_decay_ramps_up_to_its_base():
    assert ramped_decay(0.99, 0) == 0.0
    assert ramped_decay(0.99, 1) == 0.5
    assert ramped_decay(0.99, 10_000) == 0.99
    values = [ramped_decay(0.99, s) for s in range(200)]
    assert values == sorted(values)


def test_the_engine_moves_declared_teachers(seg_phantom, tmp_path):
    """A method that declares a (student, teacher) pair gets its teacher updated every step."""
    from medssl.engine.module import MethodModule

    class Probe(MethodModule):
        task, name = "segmentation", "probe"

        def __init__(self):
            super().__init__({"task": "segmentation", "train": {"max_steps": 10}}, {})
            self.student = nn.Linear(2, 1)
            self.teacher = make_teacher(self.student)

        def momentum_pairs(self):
            return [(self.student, self.teacher)]

    probe = Probe()
    before = probe.teacher.weight.clone()
    with torch.no_grad():
        probe.student.weight.add_(1.0)
    probe.on_train_batch_end(None, None, 0)  # global_step 0: decay 0, teacher := student
    assert torch.allclose(probe.teacher.weight, probe.student.weight)
    assert not torch.allclose(probe.teacher.weight, before)
