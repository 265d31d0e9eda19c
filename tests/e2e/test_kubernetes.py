"""deploy/kubernetes/: the manifests validate against Kubernetes' schemas
(kubernetes-validate), their timings fit the drain, and the sequence a Pod goes
through when it is deleted is played with the real command, run with the
container's own arguments (only the addresses rewritten to loopback)."""

from __future__ import annotations

import copy
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from commandline import APP, StderrLines, free_port, lowserve
from load import Load
from scrape import scrape_text

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
pytestmark = pytest.mark.timeout(90)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _container() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Deployment's Pod spec and its one container."""
    [deployment] = _documents(ROOT / "deploy" / "kubernetes" / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_strictly(path: Path, version: str) -> None:
    for doc in _documents(path):
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_broken_manifest_is_refused() -> None:
    [deployment] = _documents(ROOT / "deploy" / "kubernetes" / "deployment.yaml")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["prot"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


def _flag(args: list[str], name: str) -> str:
    [value] = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    return value


def test_the_grace_period_covers_the_pause_and_the_drain() -> None:
    pod, container = _container()
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    drain = float(_flag(container["args"], "shutdown-timeout"))
    assert pod["terminationGracePeriodSeconds"] >= pause + drain + 5
    # the probes read the supervisor's admin port, which --metrics opens
    admin = {p["name"]: p["containerPort"] for p in container["ports"]}["admin"]
    assert _flag(container["args"], "metrics").endswith(f":{admin}")
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}


def test_a_deleted_pod_drains_as_kubernetes_runs_it(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(APP)
    pod, container = _container()
    port, admin = free_port(), free_port()
    args = []
    for arg in container["args"]:
        arg = re.sub(r"^--bind=.*", f"--bind=127.0.0.1:{port}", arg)
        arg = re.sub(r"^--metrics=.*", f"--metrics=127.0.0.1:{admin}", arg)
        args.append("myapp:handler" if ":handler" in arg and not arg.startswith("-") else arg)
    proc = lowserve(*args, "--log-level=info", cwd=tmp_path)
    stderr = StderrLines(proc)
    # keep-alive clients standing for a Service's proxies: until the endpoint is
    # removed they open connections as they need them; after, they keep using the
    # ones they have (conntrack keeps those flows) and open none
    removed = threading.Event()
    proxy = Load(port, clients=8, no_new_connections=removed)
    try:
        # the startup and readiness probes, as the kubelet calls them
        deadline = time.monotonic() + 20
        while True:
            try:
                if scrape_text(admin, "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, stderr.lines[-3:]
            time.sleep(0.1)
        with proxy:
            proxy.wait_for(200)
            # 1. deleted: the endpoint goes (no new connections); 2. preStop's pause
            # (here 1 s for the manifest's 10), the kept connections still carry requests
            removed.set()
            before = proxy.tally.ok
            time.sleep(1.0)
            assert proxy.tally.ok > before, "kept connections carried nothing during the pause"
            assert scrape_text(admin, "/readyz")[0] == 200  # SIGTERM has not come yet
            # 3. SIGTERM: not ready at once, alive while the drain runs
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            stderr.wait_for("stopping (SIGTERM)", 10)
            not_ready = 0
            while True:  # /readyz says 503 until the admin port closes with the supervisor
                try:
                    status = scrape_text(admin, "/readyz")[0]
                except OSError:
                    break
                assert status == 503
                not_ready += 1
                time.sleep(0.02)
            assert not_ready >= 1
            code = proc.wait(30)
            took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr.join()
    assert code == 0
    assert proxy.tally.failed == []
    # 4. well within what the grace period leaves after the pause
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert took < pod["terminationGracePeriodSeconds"] - pause
    print(f"pod deletion: {proxy.tally.ok} requests answered, 0 failed, drained in {took:.2f} s")
