"""The models a server serves, and the only code that changes them while calls go on. Rules:

- **Routing**: a call names a model (or the server has one model of the call's task) and maybe a version; no
  version means the highest version serving. What is routed is one dict per model, replaced whole: a call sees the
  old set or the new one, never half of a change.
- **Loading** starts each new version beside the serving ones: its checksums are verified, its workers start, it
  answers a warm-up, and only then does routing move to it. A version that fails any step is closed, listed in the
  index as UNAVAILABLE with its reason, and routing is left as it was. When no version a load wanted came up, the
  versions already serving keep serving, whatever the version policy says.
- **Retiring** (a swap's old version, an unload, a stop): out of routing first, then it finishes every call it took
  (`Model.drain`), then its workers stop.
- **One change at a time**: a load or unload while another runs is refused as busy; a poll round that finds one
  running waits for the next round.
- **Budget**: `max_models` loaded versions at most, counted as they will be once the change is done.
- **Control** (`ModelControl`): `none` loads what is there at start and refuses changes; `explicit` takes load and
  unload calls (the KServe repository extension); `poll` also rescans the folder every `poll_s` seconds: new or
  changed versions load, versions the policy no longer picks retire, and models whose folder is gone unload.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from baton.errors import BatonError, ConfigError, InvalidRequest, NotFound, Refused
from baton.serving.manifest import MANIFEST
from baton.serving.repository.layout import Layout, scan
from baton.serving.repository.model import Model
from baton.serving.repository.policy import VersionPolicy
from baton.task import Task

__all__ = ["ModelControl", "Repository"]

logger = logging.getLogger(__name__)

_WARMUP_S = 120.0
_REASON_CHARS = 500


class ModelControl(StrEnum):
    NONE = "none"
    EXPLICIT = "explicit"
    POLL = "poll"


def _stamp(path: Path) -> tuple[int, int]:
    """What identifies a version folder's content cheaply: its manifest's mtime and size (a re-export rewrites it)."""
    try:
        info = (path / MANIFEST).stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


def _reason(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, BatonError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:_REASON_CHARS]


class Repository:
    """`build(name, version, path)` loads one version (blocking: it runs in a thread) and returns it unstarted."""

    def __init__(
        self,
        root: Path,
        build: Callable[[str, int, Path], Model],
        *,
        name: str | None = None,
        policy: VersionPolicy | None = None,
        control: ModelControl = ModelControl.NONE,
        max_models: int | None = None,
        warmup: bool = True,
        grace_s: float = 10.0,
    ) -> None:
        self.root = root
        self.policy = policy or VersionPolicy()
        self.control = control
        self.max_models = max_models
        self._build = build
        self._name = name  # a lone bundle's model name (None: the manifest's; layout.py)
        self._warmup = warmup
        self._grace_s = grace_s
        self._serving: dict[str, dict[int, Model]] = {}
        self._states: dict[tuple[str, int], tuple[str, str]] = {}  # versions not READY: (state, reason)
        self._stamps: dict[tuple[str, int], tuple[int, int]] = {}  # loaded or failed: the content it had
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self.single = False

    # ---- routing -----------------------------------------------------------------------------------------------
    def serving(self) -> list[Model]:
        return [m for versions in self._serving.values() for m in versions.values()]

    def names(self) -> list[str]:
        return sorted(self._serving)

    def versions(self, name: str) -> list[int]:
        """The versions of `name` serving now, ascending."""
        return sorted(self._serving.get(name, {}))

    def resolve(self, name: str | None, version: str | None = None, task: Task | None = None) -> Model:
        """The version a call goes to (NotFound or InvalidRequest naming what exists)."""
        if not name:
            names = [n for n, vs in self._serving.items() if task is None or next(iter(vs.values())).task is task]
            if not names and len(self._serving) == 1:
                names = list(self._serving)  # one model, of another task: the caller names the call that answers
            if len(names) != 1:
                if not names:
                    kind = f"no {task} model" if task else "no model"
                    raise NotFound(f"this server serves {kind} right now (models: {self.names()[:20]})")
                raise InvalidRequest(f"this server serves several models: name one ({', '.join(sorted(names)[:20])})")
            name = names[0]
        versions = self._serving.get(name)
        if not versions:
            failed = [f"version {v}: {r}" for (n, v), (s, r) in sorted(self._states.items()) if n == name and r]
            why = f" ({'; '.join(failed)[:_REASON_CHARS]})" if failed else ""
            raise NotFound(f"unknown model '{name[:200]}'{why}; this server serves {self.names()[:20]}")
        if not version:
            return versions[max(versions)]
        if not version.isdigit() or int(version) not in versions:
            raise NotFound(
                f"model '{name}' has no version '{version[:40]}' serving; it serves versions {sorted(versions)}"
            )
        return versions[int(version)]

    def index(self, ready_only: bool = False) -> list[tuple[str, str, str, str]]:
        """(name, version, state, reason) of every version the repository holds or held, for RepositoryIndex."""
        rows = {(m.name, m.version): ("READY", "") for m in self.serving()}
        for key, state in self._states.items():
            rows.setdefault(key, state)
        if not ready_only and not self.single:
            for name, versions in self._layout().models.items():
                for version in versions:
                    rows.setdefault((name, version), ("UNAVAILABLE", "unloaded"))
        out = [(n, str(v), s, r) for (n, v), (s, r) in sorted(rows.items())]
        return [row for row in out if not ready_only or row[2] == "READY"]

    # ---- changes -----------------------------------------------------------------------------------------------
    def _layout(self) -> Layout:
        try:
            return scan(self.root, self._name)
        except OSError as exc:
            logger.error("cannot read the model repository %s: %s", self.root, exc)
            return Layout()

    async def start(self) -> None:
        """Load every model found. A lone bundle that fails is an error; in a repository a model that fails is
        logged and the rest serve (with `none` control, at least one must)."""
        if not self.root.is_dir():
            raise ConfigError(f"bundle or model repository not found: {self.root}")
        layout = self._layout()
        self.single = layout.single
        for line in layout.skipped:
            logger.warning("model repository: skipped %s", line)
        async with self._lock:
            for name, versions in layout.models.items():
                try:
                    await self._load(name, layout, strict=layout.single)
                except BatonError as exc:  # a refusal of the whole model (over the budget, no version picked)
                    if layout.single:
                        raise
                    logger.error("model %s not loaded: %s", name, _reason(exc))
                    for version in self.policy.select(versions):
                        self._states[(name, version)] = ("UNAVAILABLE", _reason(exc))
        if not self._serving and self.control is ModelControl.NONE:
            reasons = "; ".join(f"{n} v{v}: {r}" for (n, v), (_, r) in self._states.items())
            raise ConfigError(f"no model in {self.root} could be loaded ({reasons[:_REASON_CHARS] or 'none found'})")

    def _check_control(self, what: str) -> None:
        if self.control is ModelControl.NONE:
            raise Refused(f"{what} refused: this server runs with --model-control none (start it with explicit)")
        if self.single:
            raise Refused(f"{what} refused: this server serves one bundle, not a model repository")
        if self._lock.locked():
            raise Refused(f"{what} refused: busy with another load or unload; try again")

    async def load(self, name: str) -> None:
        """Load (or reload) `name` from the folder: the explicit-control call."""
        self._check_control(f"loading '{name[:200]}'")
        async with self._lock:
            await self._load(name, self._layout(), strict=True)

    async def unload(self, name: str) -> None:
        self._check_control(f"unloading '{name[:200]}'")
        async with self._lock:
            if name not in self._serving:
                raise NotFound(f"unknown model '{name[:200]}'; this server serves {self.names()[:20]}")
            await self._unload(name)

    async def poll(self) -> None:
        """One rescan (poll control): load what is new or changed, unload what is gone."""
        if self._lock.locked():
            return
        async with self._lock:
            layout = self._layout()
            for name in sorted(set(self._serving) - set(layout.models)):
                logger.info("model repository: %s is gone from %s: unloading", name, self.root)
                await self._unload(name)
            for name, versions in layout.models.items():
                if self._changed(name, versions):
                    await self._load(name, layout, strict=False)

    def _changed(self, name: str, versions: dict[int, Path]) -> bool:
        """Whether a poll should load `name`: a wanted version is new or its content changed since it was loaded
        (or since it failed), or a version the policy no longer picks still serves beside one it picks."""
        wanted = self.policy.select(versions)
        current = self._serving.get(name, {})
        if any(self._stamps.get((name, v)) != _stamp(versions[v]) for v in wanted):
            return True
        return bool(set(current) - set(wanted)) and any(v in current for v in wanted)

    async def _load(self, name: str, layout: Layout, strict: bool) -> None:
        versions = layout.models.get(name)
        if not versions:
            raise NotFound(f"no model '{name[:200]}' in {self.root}: add {name}/ (a bundle, or 1/, 2/ ... of them)")
        wanted = self.policy.select(versions)
        if not wanted:
            raise NotFound(f"model '{name}': version policy {self.policy} picks none of versions {sorted(versions)}")
        current = dict(self._serving.get(name, {}))
        others = sum(len(vs) for n, vs in self._serving.items() if n != name)
        if self.max_models is not None and others + len(wanted) > self.max_models:
            raise Refused(
                f"loading '{name}' refused: over the budget of {self.max_models} loaded versions (--max-models); "
                f"{others} other(s) loaded, {len(wanted)} wanted"
            )
        todo = [v for v in wanted if v not in current or self._stamps.get((name, v)) != _stamp(versions[v])]
        loaded: dict[int, Model] = {}
        failures: list[str] = []
        for version in todo:
            key = (name, version)
            self._states[key] = ("LOADING", "")
            stamp = _stamp(versions[version])
            try:
                model = await self._bring_up(name, version, versions[version])
            except Exception as exc:  # any failure of a candidate leaves routing as it was
                if strict and not current and self.single:
                    self._states.pop(key, None)
                    raise
                reason = _reason(exc)
                self._states[key] = ("UNAVAILABLE", reason)
                self._stamps[key] = stamp
                failures.append(f"version {version}: {reason}")
                logger.error("model %s version %d failed to load: %s", name, version, reason)
                continue
            self._states.pop(key, None)
            self._stamps[key] = stamp
            loaded[version] = model
        new = {v: loaded.get(v) or current[v] for v in wanted if v in loaded or v in current}
        if not loaded and failures:
            new = current  # nothing came up: what serves keeps serving
        self._route(name, new, current)
        if failures and strict:
            kept = f"; serving versions {sorted(new)}" if new else ""
            raise Refused(f"loading '{name}' failed: {'; '.join(failures)[:_REASON_CHARS]}{kept}")

    async def _bring_up(self, name: str, version: int, path: Path) -> Model:
        loop = asyncio.get_running_loop()
        model = await loop.run_in_executor(None, self._build, name, version, path)  # the name calls route by
        model.start()
        try:
            if self._warmup:
                await asyncio.wait_for(model.warm_up(), _WARMUP_S)
        except BaseException:
            await model.close()
            raise
        logger.info("loaded %s version %d (%s, %s) from %s", model.name, version, model.task, model.variant, path)
        return model

    def _route(self, name: str, new: dict[int, Model], old: dict[int, Model]) -> None:
        if new:
            self._serving[name] = new  # one assignment: calls see the old dict or the new one
        else:
            self._serving.pop(name, None)
        for version, model in old.items():
            if new.get(version) is not model:
                self._retire(model)

    def _retire(self, model: Model) -> None:
        model.closed = True
        task = asyncio.ensure_future(self._finish(model))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _finish(self, model: Model) -> None:
        key = (model.name, model.version)
        if key not in self._states:
            self._states[key] = ("UNLOADING", "")
        if not await model.drain(self._grace_s):
            logger.warning("%r: calls still running after %.0f s; closing it", model, self._grace_s)
        await model.close()
        if self._states.get(key) == ("UNLOADING", ""):
            del self._states[key]

    async def _unload(self, name: str) -> None:
        old = self._serving.pop(name, {})
        for model in old.values():
            self._retire(model)
        await self.settle()

    async def settle(self) -> None:
        """Wait for every retiring version to finish and close."""
        while self._retiring:
            await asyncio.gather(*list(self._retiring))

    async def stop(self, grace: float) -> None:
        """Retire every version (each finishes what it took, within `grace`)."""
        self._grace_s = grace
        for name in list(self._serving):
            for model in self._serving.pop(name).values():
                self._retire(model)
        await self.settle()

    def describe(self) -> dict[str, Any]:
        return {"root": str(self.root), "policy": str(self.policy), "control": str(self.control)}
