"""Tasks, a small registry: one name per task, each task's rules in its own module.

``make_task("single-label")`` (or a :class:`Task` object, used as given) is what a
:class:`~wordsight.estimator.Classifier` fits and predicts for. Adding a task is one module with a
:class:`Task` subclass and one line in :data:`TASK_CLASSES`.
"""
from __future__ import annotations

from .base import Task
from .multi_label import MultiLabelTask
from .one_class import OneClassTask
from .single_label import SingleLabelTask

TASK_CLASSES: dict[str, type[Task]] = {c.name: c for c in (SingleLabelTask, OneClassTask, MultiLabelTask)}
ALIASES = {"multilabel": "multi-label", "singlelabel": "single-label"}


def make_task(task) -> Task:
    """The :class:`Task` registered as ``task`` (a name), or ``task`` itself when it is one."""
    if isinstance(task, Task):
        return task
    task = ALIASES.get(task, task)
    if task not in TASK_CLASSES:
        raise ValueError(f"unknown task {task!r}: choose one of {', '.join(TASK_CLASSES)}")
    return TASK_CLASSES[task]()


__all__ = ["MultiLabelTask", "OneClassTask", "SingleLabelTask", "TASK_CLASSES", "Task", "make_task"]
