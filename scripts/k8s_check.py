"""Offline checks of the Kubernetes manifests (deploy/k8s), no cluster needed.

``python scripts/k8s_check.py [DIR]`` exits 0 when every manifest under DIR
(deploy/k8s by default) holds, 1 with each problem on a line otherwise:

- every built-in object validates against the Kubernetes JSON schemas of
  KUBERNETES_VERSION, strictly (an unknown or misspelt field is refused).
  The schemas ship inside the kubernetes-validate wheel: nothing is
  downloaded;
- KEDA's ScaledObject validates against deploy/k8s/schemas/keda-scaledobject.json
  (ours, from KEDA's documentation: no CRD schema ships in a wheel);
- kustomization.yaml lists files that exist, and every manifest beside it
  (optional/ holds the alternatives and examples, validated but not listed);
- the project's own rules: beat runs exactly one replica with the Recreate
  strategy; each Deployment's selector matches its pod labels and each
  Service selects a pod template; the autoscalers target the worker
  Deployment, on the queues the app has (summaries/core/lanes.py) and, for the
  HPA, on a metric /metrics exports (summaries/observability/); every ConfigMap
  and Secret key is a setting .env.example documents; every pod reads the
  ConfigMap and Secret it is meant to.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / "deploy" / "k8s"
# The oldest minor version still widely run; the manifests use nothing newer.
KUBERNETES_VERSION = "1.29"
CUSTOM_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json"}
APP_CONFIG, APP_SECRET = "smartcache-config", "smartcache-secrets"
LANES = ("celery", "bulk")  # summaries/core/lanes.py JOB_LANES (tests/test_k8s.py compares)

Doc = dict[str, Any]

# kubernetes-validate reads its schema files (the definitions are 1 MB of JSON)
# anew for every object: read each once per process. It never mutates them.
kubernetes_validate.utils.schema_contents = functools.cache(
    kubernetes_validate.utils.schema_contents)


def manifests(directory: Path) -> Iterator[tuple[Path, Doc]]:
    for path in sorted(directory.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                yield path, doc


def schema_problems(path: Path, doc: Doc, schemas: Path) -> list[str]:
    name = f"{path.name}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
    custom = CUSTOM_SCHEMAS.get((doc.get("apiVersion", ""), doc.get("kind", "")))
    try:
        if custom is not None:
            schema = json.loads((schemas / custom).read_text())
            jsonschema.Draft202012Validator(schema).validate(doc)
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except jsonschema.ValidationError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        return [f"{name}: {where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name}: no schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    except (KeyError, TypeError) as error:
        return [f"{name}: not a Kubernetes object ({error})"]
    return []


def kustomization_problems(directory: Path) -> list[str]:
    path = directory / "kustomization.yaml"
    if not path.exists():
        return ["kustomization.yaml is missing"]
    listed = yaml.safe_load(path.read_text()).get("resources") or []
    problems = [f"kustomization.yaml lists {name}, which does not exist"
                for name in listed if not (directory / name).exists()]
    beside = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    problems += [f"{name} is not listed in kustomization.yaml (or move it to optional/)"
                 for name in sorted(beside - set(listed))]
    return problems


def _pod_spec(doc: Doc) -> Doc:
    return dict(doc.get("spec", {}).get("template", {}).get("spec", {}))


def _pod_labels(doc: Doc) -> dict[str, str]:
    return dict(doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}))


def rule_problems(docs: list[tuple[Path, Doc]], env_example: str,
                  metrics_source: str) -> list[str]:
    problems: list[str] = []
    by_kind: dict[str, dict[str, Doc]] = {}
    for _, doc in docs:
        by_kind.setdefault(doc.get("kind", ""), {})[doc.get("metadata", {}).get("name", "")] = doc
    deployments = by_kind.get("Deployment", {})
    templates = [_pod_labels(d) for kind in ("Deployment", "StatefulSet")
                 for d in by_kind.get(kind, {}).values()]

    for name in ("web", "worker", "beat", "flower"):
        if name not in deployments:
            problems.append(f"no Deployment named {name}")
    beat = deployments.get("beat")
    if beat is not None:
        spec = beat.get("spec", {})
        if spec.get("replicas") != 1 or spec.get("strategy", {}).get("type") != "Recreate":
            problems.append("beat must run exactly one replica with strategy Recreate "
                            "(two beats send every periodic task twice)")
    for kind in ("Deployment", "StatefulSet"):
        for name, doc in by_kind.get(kind, {}).items():
            selector = doc.get("spec", {}).get("selector", {}).get("matchLabels", {})
            labels = _pod_labels(doc)
            if not selector or any(labels.get(k) != v for k, v in selector.items()):
                problems.append(f"{kind} {name}: selector {selector} does not match its "
                                f"pod labels {labels}")
    for name, service in by_kind.get("Service", {}).items():
        selector = service.get("spec", {}).get("selector", {})
        if not any(all(labels.get(k) == v for k, v in selector.items()) for labels in templates):
            problems.append(f"Service {name}: selector {selector} matches no pod template")

    for name, scaled in by_kind.get("ScaledObject", {}).items():
        target = scaled.get("spec", {}).get("scaleTargetRef", {}).get("name")
        if target != "worker":
            problems.append(f"ScaledObject {name} scales {target!r}, not the worker Deployment")
        lists = {t.get("metadata", {}).get("listName") for t in scaled["spec"].get("triggers", [])
                 if t.get("type") in ("redis", "redis-sentinel")}
        if lists != set(LANES):
            problems.append(f"ScaledObject {name} watches the lists {sorted(map(str, lists))}; "
                            f"the queues are {list(LANES)}")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        target = hpa.get("spec", {}).get("scaleTargetRef", {}).get("name")
        if target != "worker":
            problems.append(f"HPA {name} scales {target!r}, not the worker Deployment")
        for metric in hpa.get("spec", {}).get("metrics", []):
            metric_name = metric.get("external", {}).get("metric", {}).get("name", "")
            if f'"{metric_name}"' not in metrics_source:
                problems.append(f"HPA {name}: /metrics exports no {metric_name!r}")

    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", env_example, re.MULTILINE))
    for kind in ("ConfigMap", "Secret"):
        for name, doc in by_kind.get(kind, {}).items():
            keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
            problems += [f"{kind} {name}: {key} is not a setting (.env.example)"
                         for key in sorted(keys - documented)]
    for kind in ("Deployment", "Job"):
        for name, doc in by_kind.get(kind, {}).items():
            if doc.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name") != \
                    "smartcache":
                continue
            for container in _pod_spec(doc).get("containers", []):
                sources = {(s.get("configMapRef") or s.get("secretRef") or {}).get("name")
                           for s in container.get("envFrom", [])}
                if {APP_CONFIG, APP_SECRET} - sources:
                    problems.append(f"{kind} {name}: container {container.get('name')} must "
                                    f"read {APP_CONFIG} and {APP_SECRET} (envFrom)")
    return problems


def problems(directory: Path = DEFAULT_DIR) -> list[str]:
    found = kustomization_problems(directory)
    docs: list[tuple[Path, Doc]] = []
    try:
        docs = list(manifests(directory))
    except yaml.YAMLError as error:
        return [*found, f"not YAML: {error}"]
    for path, doc in docs:
        if not isinstance(doc, dict):
            found.append(f"{path.name}: a document that is not an object")
            continue
        found += schema_problems(path, doc, directory / "schemas")
    env_example = (ROOT / ".env.example").read_text()
    metrics_source = "".join(path.read_text() for path in
                             sorted((ROOT / "summaries" / "observability").glob("*.py")))
    return found + rule_problems([d for d in docs if isinstance(d[1], dict)], env_example,
                                 metrics_source)


def main(argv: list[str]) -> int:
    directory = Path(argv[0]) if argv else DEFAULT_DIR
    found = problems(directory)
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print(f"{directory}: every manifest valid (Kubernetes {KUBERNETES_VERSION} schemas, "
              "KEDA ScaledObject schema, project rules)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
