"""A model repository: many models, each of one or more versions, served by one process (`baton serve DIR`).

`layout.py` reads a folder into models and versions (pure), `policy.py` chooses the versions to serve (pure),
`model.py` is one loaded version (its bundle, engine and batcher), `registry.py` routes calls to loaded versions
and loads, swaps and unloads them while calls go on."""

from baton.serving.repository.layout import Layout, scan
from baton.serving.repository.model import Model
from baton.serving.repository.policy import VersionPolicy
from baton.serving.repository.registry import ModelControl, Repository

__all__ = ["Layout", "Model", "ModelControl", "Repository", "VersionPolicy", "scan"]
