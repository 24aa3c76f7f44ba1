"""What `baton tune` searches: parameters, their ranges, and the YAML that overrides them.

Names are the `baton train` flags' (learning_rate, epochs, batch_size, warmup_ratio, weight_decay); each maps to its
`TrainingArguments` field. A YAML file replaces the whole space:

    learning_rate: {type: loguniform, low: 1.0e-5, high: 3.0e-4}
    epochs: {type: int, low: 2, high: 5}
    batch_size: {type: choice, values: [8, 16, 32]}
    warmup_ratio: {type: uniform, low: 0.0, high: 0.2}

The defaults bracket the default recipe (lr 1e-4, 3 epochs, batch 16, warm-up 0.1, weight decay 0.01).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baton.errors import ConfigError

__all__ = ["DEFAULT_SPACE", "PARAMETERS", "Param", "SearchSpace", "load_space"]

# baton name -> TrainingArguments field
PARAMETERS = {
    "learning_rate": "learning_rate",
    "epochs": "num_train_epochs",
    "batch_size": "per_device_train_batch_size",
    "warmup_ratio": "warmup_ratio",
    "weight_decay": "weight_decay",
}
_KINDS = ("loguniform", "uniform", "int", "choice")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        where = f"search space: '{self.name}'"
        if self.name not in PARAMETERS:
            raise ConfigError(f"{where} is not a parameter baton tunes; use {', '.join(PARAMETERS)}")
        if self.kind not in _KINDS:
            raise ConfigError(f"{where}: type must be one of {', '.join(_KINDS)} (got {self.kind!r})")
        if self.kind == "choice":
            if not self.values:
                raise ConfigError(f"{where}: a choice needs a non-empty list of values")
            return
        if self.low is None or self.high is None or not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError(f"{where}: {self.kind} needs finite low and high")
        if not self.low < self.high:
            raise ConfigError(f"{where}: low must be below high (got {self.low} and {self.high})")
        if self.kind == "loguniform" and self.low <= 0:
            raise ConfigError(f"{where}: loguniform needs low > 0")
        if self.kind == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ConfigError(f"{where}: int needs whole low and high")

    def optuna(self, trial: Any) -> Any:
        field = PARAMETERS[self.name]
        if self.kind == "choice":
            return trial.suggest_categorical(field, list(self.values))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(field, int(self.low), int(self.high))
        return trial.suggest_float(field, self.low, self.high, log=self.kind == "loguniform")

    def ray(self) -> Any:
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.values))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return tune.randint(int(self.low), int(self.high) + 1)  # randint's upper bound is exclusive
        return tune.loguniform(self.low, self.high) if self.kind == "loguniform" else tune.uniform(self.low, self.high)


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    def __post_init__(self) -> None:
        if not self.params:
            raise ConfigError("search space: empty; give at least one parameter")

    def optuna(self, trial: Any) -> dict[str, Any]:
        return {PARAMETERS[p.name]: p.optuna(trial) for p in self.params}

    def ray(self, trial: Any = None) -> dict[str, Any]:
        return {PARAMETERS[p.name]: p.ray() for p in self.params}


DEFAULT_SPACE = SearchSpace(
    (
        Param("learning_rate", "loguniform", 2e-5, 3e-4),
        Param("epochs", "int", 2, 5),
        Param("batch_size", "choice", values=(8, 16, 32)),
        Param("warmup_ratio", "uniform", 0.0, 0.2),
        Param("weight_decay", "uniform", 0.0, 0.1),
    )
)


def load_space(path: str | Path | None) -> SearchSpace:
    """The default space, or the one a YAML file describes (every problem named with the file)."""
    if path is None:
        return DEFAULT_SPACE
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--space: file not found: {file}")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"--space {file}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"--space {file}: expected a mapping of parameter names to ranges")
    params = []
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"--space {file}: '{name}' must be a mapping like {{type: uniform, low: 0, high: 1}}")
        unknown = set(spec) - {"type", "low", "high", "values"}
        if unknown:
            raise ConfigError(f"--space {file}: '{name}' has unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        try:
            params.append(
                Param(
                    str(name),
                    str(spec.get("type", "")),
                    None if spec.get("low") is None else float(spec["low"]),
                    None if spec.get("high") is None else float(spec["high"]),
                    tuple(spec.get("values") or ()),
                )
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"--space {file}: '{name}': low and high must be numbers ({exc})") from exc
        except ConfigError as exc:
            raise ConfigError(f"--space {file}: {str(exc).removeprefix('search space: ')}") from exc
    try:
        return SearchSpace(tuple(params))
    except ConfigError as exc:
        raise ConfigError(f"--space {file}: {str(exc).removeprefix('search space: ')}") from exc
