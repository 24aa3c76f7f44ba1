"""The shipped YAML examples load into the typed configs; serve flags are validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import REPO

from baton._config import load_config
from baton.errors import ConfigError
from baton.serving.config import ServeConfig
from baton.training import TrainConfig, load_train_config


def test_example_configs_load() -> None:
    serve = load_config(ServeConfig, REPO / "examples/serve.yaml", {"port": 6000})
    assert (serve.bundle, serve.port, serve.max_batch_tokens, serve.grace_s) == ("bundles/demo", 6000, 8192, 10)
    assert (serve.max_batch_size, serve.workers) == (8, 2)
    train = load_train_config(REPO / "examples/train.yaml", {})
    assert isinstance(train, TrainConfig) and train.batch_size == 16 and train.learning_rate == 1e-4


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"port": 70000}, "--port"),
        ({"device": "tpu"}, "--device"),
        ({"tls_cert": "x.pem"}, "--tls-cert and --tls-key go together"),
        ({"auth_token_file": "/nonexistent/token"}, "--auth-token-file: file not found"),
        ({"max_batch_size": 0}, "--max-batch-size, --max-queue-items and --max-request-tokens must be >= 1"),
        ({"wide_batches": "x"}, "--wide-batches must be one of idle, alone"),
        ({"min_second_batch": -1}, "--min-second-batch must be >= 0"),
        ({"max_pending_calls": 0}, "--max-pending-calls must be in"),
        ({"min_batch_fill": -0.1}, r"--min-batch-fill must be in \[0, 1\]"),
        ({"workers": 0}, "--workers must be >= 1"),
        ({"worker_nice": 20}, r"--worker-nice must be in \[0, 19\]"),
        ({"threads": 0}, "--threads must be >= 1"),
        ({"event_loop": "trio"}, "--event-loop must be one of auto, asyncio, uvloop"),
    ],
)
def test_serve_config_validation(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServeConfig(bundle="b", **kw)


def test_unknown_serve_key(tmp_path: Path) -> None:
    cfg = tmp_path / "s.yaml"
    cfg.write_text("bundle: b\nmax-batch: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'max-batch'"):
        load_config(ServeConfig, cfg, {})


def test_min_batch_fill_defaults_by_device() -> None:
    """Unset, a CPU server bounds padding (0.9) and a CUDA one does not (0); a value given is kept on both."""
    auto = ServeConfig(bundle="b")
    assert (auto.batcher_config("cpu").min_batch_fill, auto.batcher_config("cuda").min_batch_fill) == (0.9, 0.0)
    given = ServeConfig(bundle="b", min_batch_fill=0.5)
    assert (given.batcher_config("cpu").min_batch_fill, given.batcher_config("cuda").min_batch_fill) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"calibration_texts": 0}, "--calibration-texts must be >= 1"),
        ({"int8_scales": "static"}, "--int8-scales must be one of fixed, dynamic"),
        ({"long_text": "summarize"}, "--long-text must be one of truncate, chunk"),
        ({"chunk_combine": "median"}, "--chunk-combine must be one of mean, max"),
    ],
)
def test_export_config_names_the_flag(kw: dict, message: str, tmp_path: Path) -> None:
    from baton.export.config import ExportConfig

    with pytest.raises(ConfigError, match=message):
        ExportConfig(run_dir=str(tmp_path / "run"), output=str(tmp_path / "b"), **kw)
