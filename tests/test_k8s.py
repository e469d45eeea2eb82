"""The Kubernetes manifests, validated offline (scripts/k8s_check.py): the
real ones pass, and a copy broken in each way the check exists for fails, so
the check is real. The schemas ship in the kubernetes-validate wheel."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from summaries.core.lanes import JOB_LANES

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"

pytestmark = pytest.mark.no_valkey


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


k8s_check = load("k8s_check")


def test_the_real_manifests_pass_and_a_broken_one_fails_the_command(tmp_path: Path) -> None:
    assert k8s_check.problems(K8S) == []
    assert k8s_check.main([str(K8S)]) == 0
    broken = broken_copy(tmp_path, "beat.yaml", "  replicas: 1", "  replicas: 3")
    assert k8s_check.main([str(broken)]) == 1


def test_the_check_knows_the_apps_queues() -> None:
    assert tuple(k8s_check.LANES) == tuple(JOB_LANES)


def test_every_app_pod_runs_the_placeholder_image_kustomize_replaces() -> None:
    images = {container["image"]
              for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml"
              for doc in yaml.safe_load_all(path.read_text()) if doc
              for container in doc.get("spec", {}).get("template", {}).get("spec", {})
              .get("containers", [])
              if doc["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "smartcache"}
    assert images == {"smartcache"}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert [image["name"] for image in kustomization["images"]] == ["smartcache"]


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    text = (copy / file).read_text()
    assert old in text, f"{old!r} is not in {file}: the test is stale"
    (copy / file).write_text(text.replace(old, new, 1))
    return copy


@pytest.mark.parametrize(("file", "old", "new", "complaint"), [
    # Kubernetes' own schemas, strict: a misspelt field, a wrong type.
    ("web.yaml", "automountServiceAccountToken", "automountServiceAcountToken",
     "'automountServiceAcountToken' was unexpected"),
    ("worker.yaml", "  replicas: 1", "  replicas: one", "'one' is not of type 'integer'"),
    ("web.yaml", "targetPort: http", "targetPort: [http]", "ports/0/targetPort"),
    ("migrate-job.yaml", "restartPolicy: OnFailure", "restartPolicy: 7", "restartPolicy"),
    # KEDA's ScaledObject, against our schema.
    ("worker-scaledobject.yaml", "  scaleTargetRef:\n    name: worker\n", "",
     "'scaleTargetRef' is a required property"),
    ("worker-scaledobject.yaml", 'listLength: "100"', 'listLength: "many"', "listLength"),
    ("worker-scaledobject.yaml", "  cooldownPeriod: 300", "  cooldownPeriodd: 300",
     "cooldownPeriodd"),
    # The project's rules.
    ("beat.yaml", "  replicas: 1", "  replicas: 2", "exactly one replica"),
    ("beat.yaml", "strategy: {type: Recreate}", "strategy: {type: RollingUpdate}",
     "strategy Recreate"),
    ("worker-scaledobject.yaml", "listName: bulk", "listName: bulkk", "the queues are"),
    ("optional/hpa-queue-depth.yaml", "name: smartcache_queue_depth",
     "name: smartcache_queue_length", "/metrics exports no"),
    ("config.yaml", "  CACHE_VALKEY_URL:", "  CACHE_VALKEY_ULR:", "is not a setting"),
    ("flower.yaml", "  selector: {app.kubernetes.io/name: smartcache, "
     "app.kubernetes.io/component: flower}", "  selector: {app.kubernetes.io/name: flower}",
     "matches no pod template"),
    ("worker.yaml", "            - secretRef: {name: smartcache-secrets}\n", "", "envFrom"),
    ("kustomization.yaml", "  - beat.yaml\n", "", "beat.yaml is not listed"),
    ("kustomization.yaml", "  - flower.yaml", "  - flowers.yaml", "does not exist"),
])
def test_a_broken_manifest_is_rejected(tmp_path: Path, file: str, old: str, new: str,
                                       complaint: str) -> None:
    found = k8s_check.problems(broken_copy(tmp_path, file, old, new))
    assert found, "the broken copy passed"
    assert any(complaint in problem for problem in found), found
