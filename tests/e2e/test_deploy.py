"""The Dockerfile and Kubernetes manifests name the server's real flags and ports, and the image's commands work.

No Docker daemon or cluster runs here, so the image is checked by what it runs: its ENTRYPOINT + CMD and its
HEALTHCHECK command are run as written (bundle path and ports swapped for a test bundle and free ports) with torch,
transformers and optimum made unimportable, as in the runtime image that installs only the `serve` extra."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO

DEPLOY = REPO / "deploy" / "kubernetes"


def _dockerfile_stage(stage: str) -> dict[str, Any]:
    """EXPOSE, HEALTHCHECK, ENTRYPOINT and CMD of one stage of the Dockerfile (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    found: dict[str, Any] = {}
    current = None
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "FROM":
            current = words[-1]
        elif current == stage and words[0] in ("EXPOSE", "ENTRYPOINT", "CMD", "HEALTHCHECK", "USER"):
            rest = line.split(None, 1)[1]
            if words[0] == "EXPOSE":
                found["EXPOSE"] = sorted(int(p) for p in rest.split())
            elif words[0] == "HEALTHCHECK":
                found["HEALTHCHECK"] = json.loads(rest[rest.index("CMD") + 3 :].strip())
            elif words[0] == "USER":
                found["USER"] = rest.strip()
            else:
                found[words[0]] = json.loads(rest)
    return found


def _options(*command: str) -> set[str]:
    """Every --option of a baton command, read from the real CLI."""
    import typer.main

    from baton.cli import app

    group = typer.main.get_command(app)
    cmd = group
    for name in command:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")}


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def _manifests() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        (doc,) = list(yaml.safe_load_all(path.read_text()))
        out[path.name] = doc
    return out


def test_every_manifest_parses_and_names_real_flags_and_ports() -> None:
    docs = _manifests()
    assert set(docs) == {
        "deployment.yaml",
        "service.yaml",
        "hpa.yaml",
        "servicemonitor.yaml",
        "inferenceservice.yaml",
    }
    serve_flags = _options("serve")
    image = _dockerfile_stage("serve")
    assert image["ENTRYPOINT"] == ["baton", "serve"] and image["USER"] == "10001"
    cmd = image["CMD"]
    assert {a for a in cmd if a.startswith("--")} <= serve_flags
    grpc_port, metrics_port = int(_flag(cmd, "--port")), int(_flag(cmd, "--metrics-port"))
    http_port = int(_flag(cmd, "--http-port"))
    assert image["EXPOSE"] == sorted([grpc_port, http_port, metrics_port])
    assert _flag(cmd, "--host") == _flag(cmd, "--metrics-host") == "0.0.0.0"
    token = _flag(cmd, "--auth-token-file")  # issue 29: exposed on every interface, so calls need the token
    health = image["HEALTHCHECK"]
    assert health[:3] == ["baton", "-q", "health"] and _flag(health, "--server") == f"127.0.0.1:{grpc_port}"
    assert {a for a in health if a.startswith("--")} <= _options("health")

    deployment = docs["deployment.yaml"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    args = container["args"]
    assert {a for a in args if a.startswith("--")} <= serve_flags
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "grpc": int(_flag(args, "--port")),
        "http": int(_flag(args, "--http-port")),
        "metrics": int(_flag(args, "--metrics-port")),
    }
    paths = {
        "startupProbe": "/v2/health/ready",
        "readinessProbe": "/v2/health/ready",
        "livenessProbe": "/v2/health/live",
    }
    for probe, path in paths.items():  # HTTP probes on the public KServe health routes (app.py: no token)
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    from baton.serving.http.front import routes

    public = {r.pattern for r in routes() if r.public}
    assert set(paths.values()) <= public
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["spec"]["terminationGracePeriodSeconds"] >= pre_stop + float(_flag(args, "--grace-s"))
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
    assert pod["spec"]["securityContext"]["runAsUser"] == int(image["USER"])
    assert container["resources"]["requests"]["cpu"] == _flag(args, "--threads")
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    _check_token_mount(pod["spec"], container, token)

    service = docs["service.yaml"]["spec"]
    assert service["clusterIP"] == "None" and service["selector"] == labels
    assert {p["name"]: p["port"] for p in service["ports"]} == ports
    assert {p["targetPort"] for p in service["ports"]} == set(ports)
    hpa = docs["hpa.yaml"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"] and hpa["minReplicas"] >= 2
    monitor = docs["servicemonitor.yaml"]["spec"]
    assert monitor["endpoints"][0]["port"] == "metrics" and monitor["selector"]["matchLabels"] == labels

    (kserve,) = docs["inferenceservice.yaml"]["spec"]["predictor"]["containers"]
    assert {a for a in kserve["args"] if a.startswith("--")} <= serve_flags
    _check_token_mount(docs["inferenceservice.yaml"]["spec"]["predictor"], kserve, token)
    assert kserve["ports"] == [
        {"name": "h2c", "containerPort": int(_flag(kserve["args"], "--port")), "protocol": "TCP"}
    ]


def _check_http(port: int, token: str) -> None:
    """The image's HTTP port: probes open, calls need the token."""
    import urllib.error
    import urllib.request

    def status(path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return int(r.status)
        except urllib.error.HTTPError as e:
            return int(e.code)

    body = json.dumps({"texts": ["fine"]}).encode()
    assert status("/v2/health/ready") == status("/v2/health/live") == 200
    assert status("/v1/classify", body) == 401
    assert status("/v1/classify", body, {"Authorization": f"Bearer {token}"}) == 200


def _check_token_mount(pod: dict[str, Any], container: dict[str, Any], token: str) -> None:
    """The container reads --auth-token-file (the image's path) from a Secret volume its user can read."""
    assert _flag(container["args"], "--auth-token-file") == token
    (mount,) = [m for m in container["volumeMounts"] if token.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] and volume["secret"]["secretName"] == "baton-auth"
    assert volume["secret"]["defaultMode"] & 0o007 == 0 and pod["securityContext"]["fsGroup"] == 10001


_WITHOUT_TRAINING = (
    "import sys\n"
    "for name in ('torch', 'transformers', 'optimum', 'datasets', 'sklearn'):\n"
    "    sys.modules[name] = None\n"
    "from baton.cli import main\n"
    "main(sys.argv[1:])\n"
)


@pytest.mark.timeout(300)
def test_the_image_command_serves_and_its_healthcheck_passes_without_torch(tiny_bundle: Path, tmp_path: Path) -> None:
    image = _dockerfile_stage("serve")
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    swap = {"/models/bundle": str(tiny_bundle), "/etc/baton/auth/token": str(token_file)}
    args = [swap.get(a, a) for a in image["CMD"]]
    for flag in ("--port", "--http-port", "--metrics-port"):
        args[args.index(flag) + 1] = "0"  # the server picks; read back
    args[args.index("--host") + 1] = args[args.index("--metrics-host") + 1] = "127.0.0.1"  # no exposure in tests
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    python = [sys.executable, "-c", _WITHOUT_TRAINING]
    server = subprocess.Popen(
        [*python, *image["ENTRYPOINT"][1:], *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    health = image["HEALTHCHECK"][1:]
    try:
        assert server.stdout is not None
        started = server.stdout.readline()  # "baton serving NAME on HOST:PORT, HTTP on :PORT, metrics on :PORT/..."
        grpc_port = int(started.split(" on ")[1].split(",")[0].rsplit(":", 1)[1])
        http_port = int(started.split("HTTP on :")[1].split(",")[0])
        health[health.index("--server") + 1] = f"127.0.0.1:{grpc_port}"
        deadline = time.monotonic() + 120
        probe = None
        while time.monotonic() < deadline and server.poll() is None:
            probe = subprocess.run([*python, *health], capture_output=True, text=True, env=env, timeout=60)
            if probe.returncode == 0:
                break
            time.sleep(0.5)
        assert probe is not None and probe.returncode == 0, (probe, server.poll())
        assert probe.stdout.strip() == f"127.0.0.1:{grpc_port}: SERVING"
        from baton.serving.client import Client, Unauthenticated

        with Client(f"127.0.0.1:{grpc_port}") as anyone, pytest.raises(Unauthenticated):
            anyone.classify(["fine"])
        with Client(f"127.0.0.1:{grpc_port}", token="s3cret") as holder:
            assert len(holder.classify(["fine"])) == 1
        _check_http(http_port, "s3cret")
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
        down = subprocess.run([*python, *health], capture_output=True, text=True, env=env, timeout=60)
        assert down.returncode == 1 and "UNAVAILABLE" in down.stderr, shlex.join(health)
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(10)
