"""Typed configuration of `baton export`, with named quantization presets."""

from __future__ import annotations

import enum
import platform
from dataclasses import dataclass
from pathlib import Path

from baton.errors import ConfigError
from baton.serving.long_text import ChunkCombine, LongText

__all__ = ["ExportConfig", "GateThresholds", "Int8Scales", "Optimize", "QuantPreset", "Quantize", "detect_preset"]


class Optimize(str, enum.Enum):
    NONE = "none"
    O1 = "O1"
    O2 = "O2"


class Quantize(str, enum.Enum):
    NONE = "none"
    INT8 = "int8"


class Int8Scales(str, enum.Enum):
    """How int8 activations get their scales (export/int8_schemes.py)."""

    FIXED = "fixed"  # calibrated at export on training texts: a text's answer does not depend on its batch
    DYNAMIC = "dynamic"  # per batch at run time (onnxruntime's dynamic quantization): answers move with batch-mates


class QuantPreset(str, enum.Enum):
    """Optimum's dynamic-quantization presets; AUTO picks the one matching this CPU."""

    AUTO = "auto"
    AVX512_VNNI = "avx512_vnni"
    AVX512 = "avx512"
    AVX2 = "avx2"
    ARM64 = "arm64"


def detect_preset() -> QuantPreset:
    if platform.machine().lower() in {"aarch64", "arm64"}:
        return QuantPreset.ARM64
    try:
        flags = set(Path("/proc/cpuinfo").read_text(encoding="utf-8").split())
    except OSError:
        return QuantPreset.AVX2
    if "avx512_vnni" in flags:
        return QuantPreset.AVX512_VNNI
    if "avx512f" in flags:
        return QuantPreset.AVX512
    return QuantPreset.AVX2


INT8_GATES = ("confident", "agreement")


@dataclass(frozen=True, kw_only=True)
class GateThresholds:
    """The parity gates' limits. The int8 gate (`int8_gate`):

    confident  agreement with fp32 counted over the decisions fp32 is sure of must reach `min_int8_agreement`:
               its top-2 probability margin at least `confident_margin` (0.4: for two classes a top probability
               of 0.7); multi-label, each label decision at least that far from the threshold. And a quality
               drop (accuracy; entity F1) over `max_int8_accuracy_drop` fails when it is real, i.e. its paired
               95 % interval lies above zero, and at 3x the limit in any case (entity F1, not a mean over
               samples, is taken at its point estimate). A flip of a 0.51-vs-0.49 decision is no regression.
               Measured on real fine-tunes in docs/benchmarks.md ("int8 on real fine-tunes").
    agreement  the earlier rule: raw argmax agreement ≥ `min_int8_agreement` and the point drop within the limit.

    Either gate judges only on `min_int8_evidence` decisions or more (confident: those fp32 is sure of; agreement:
    all): fewer cannot tell 0.99 from 1.0, and a gate on them passed without judging (issue 29: "0 % of decisions
    sure" passed). Below it the export says "not enough evidence" and ships the safer variant, fp32 alone
    (recorded); --allow-unjudged-int8 ships int8 anyway, recorded as unjudged.
    """

    max_abs_logit_diff: float = 1e-3  # fp32 ONNX vs PyTorch
    min_int8_agreement: float = 0.99  # int8 vs fp32 ONNX argmax agreement
    max_int8_accuracy_drop: float = 0.01  # in accuracy (0.01 = 1 point)
    min_fp16_agreement: float = 0.99
    int8_gate: str = "confident"
    confident_margin: float = 0.4
    min_int8_evidence: int = 100

    def __post_init__(self) -> None:
        if self.max_abs_logit_diff <= 0 or not 0 < self.min_int8_agreement <= 1 or self.max_int8_accuracy_drop < 0:
            raise ConfigError("invalid parity gate thresholds")
        if self.int8_gate not in INT8_GATES:
            raise ConfigError(f"--int8-gate must be one of {', '.join(INT8_GATES)} (got {self.int8_gate!r})")
        if self.min_int8_evidence < 1:
            raise ConfigError(f"min_int8_evidence must be at least 1 (got {self.min_int8_evidence})")
        if not 0 <= self.confident_margin < 1:
            raise ConfigError(f"confident_margin must be in [0, 1) (got {self.confident_margin})")


def _enum(kind: type[enum.Enum], value: object, flag: str) -> enum.Enum:
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError as exc:
        choices = ", ".join(str(m.value) for m in kind)
        raise ConfigError(f"{flag} must be one of {choices} (got {value!r})") from exc


@dataclass(frozen=True, kw_only=True)
class ExportConfig:
    run_dir: str
    output: str
    device: str = "cpu"
    optimize: Optimize = Optimize.O2
    quantize: Quantize = Quantize.INT8
    preset: QuantPreset = QuantPreset.AUTO
    int8_scales: Int8Scales = Int8Scales.FIXED
    long_text: LongText = LongText.TRUNCATE  # classifiers: the bundle's default for a text past the window
    chunk_combine: ChunkCombine = ChunkCombine.MEAN
    parity_samples: int = 512
    calibration_texts: int = 512  # training texts whose activation ranges fix the int8 scales
    calibration_file: str | None = None
    allow_fallback: bool = False
    allow_unjudged: bool = False  # ship int8 when too few texts can judge it (recorded in the manifest)
    allow_untrained: bool = False  # export a run that does not beat the trivial baseline (its gates mean little)
    overwrite: bool = False
    opset: int | None = None
    gates: GateThresholds = GateThresholds()

    def __post_init__(self) -> None:
        object.__setattr__(self, "optimize", _enum(Optimize, self.optimize, "--optimize"))
        object.__setattr__(self, "quantize", _enum(Quantize, self.quantize, "--quantize"))
        object.__setattr__(self, "preset", _enum(QuantPreset, self.preset, "--preset"))
        object.__setattr__(self, "int8_scales", _enum(Int8Scales, self.int8_scales, "--int8-scales"))
        object.__setattr__(self, "long_text", _enum(LongText, self.long_text, "--long-text"))
        object.__setattr__(self, "chunk_combine", _enum(ChunkCombine, self.chunk_combine, "--chunk-combine"))
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"--device must be cpu or cuda (got {self.device!r})")
        if self.parity_samples < 1:
            raise ConfigError("--parity-samples must be >= 1")
        if self.calibration_texts < 1:
            raise ConfigError("--calibration-texts must be >= 1")
        if Path(self.output).resolve() == Path(self.run_dir).resolve():
            raise ConfigError("--output must differ from the run directory")

    @property
    def resolved_preset(self) -> QuantPreset:
        return detect_preset() if self.preset is QuantPreset.AUTO else self.preset
