"""The closed set of tasks baton trains, exports and serves.

A task's name is the manifest's `task` and Optimum's task name. Each stage keeps its own registry keyed by `Task`
(training/tasks.py, export/tasks.py, serving/tasks/, the server's services, tools/score/rows.py); a stage asks its
registry and never compares task names. docs/architecture.md walks through what a third task adds.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Task"]


class Task(StrEnum):
    CLASSIFICATION = "text-classification"
    ENTITIES = "token-classification"

    @classmethod
    def parse(cls, value: object, where: str) -> Task:
        """The task `value` names; ValueError naming `where` and the choices otherwise."""
        try:
            return cls(str(value))
        except ValueError:
            choices = ", ".join(t.value for t in cls)
            raise ValueError(f"{where}: unknown task {str(value)[:60]!r} (one of {choices})") from None
