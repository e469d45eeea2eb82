"""Static checks of the container setup, for where no container engine runs.

``python scripts/compose_check.py [docker-compose.yml]`` exits 0 when the
compose file, the Dockerfile, .dockerignore and .env.example keep their
promises, 1 with each broken one listed otherwise:

- web, worker, beat and Flower start from ``python -m smartcache.commands
  NAME`` and have a healthcheck (scripts/healthcheck.py NAME);
- every app service reads the optional ``.env`` (env_file, required: false);
- no ``${VAR:?}``, which would block ``docker compose down`` and ``logs``;
- published ports default to 127.0.0.1;
- the Dockerfile takes its base image as ``ARG BASE``;
- .dockerignore keeps var/ (secrets), .venv and .git out of the build context;
- .env.example names every setting smartcache/settings/ reads.

Where ``docker compose`` exists it also runs ``docker compose config -q``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ("web", "worker", "beat", "flower")
APP_SERVICES = ("migrate", *PROCESSES)
# Read by settings.py only under the test suite.
NOT_FOR_OPERATORS = {"SMARTCACHE_TEST_DB"}
SETTING_READ = re.compile(r'env_(?:str|bool|int|float|list|rate)\(\s*"([A-Z0-9_]+)"')


def published_on_loopback(port: str) -> bool:
    """Whether "ADDRESS:HOST_PORT:CONTAINER_PORT" publishes on loopback by
    default (ADDRESS may be "${VAR:-127.0.0.1}"); a port without an address
    is published on every interface."""
    variables = re.findall(r"\$\{[^}]*\}", port)
    parts = re.sub(r"\$\{[^}]*\}", "$", port).split(":")
    if len(parts) != 3:
        return False
    address = variables[0] if parts[0] == "$" else parts[0]
    return address in {"127.0.0.1", "${PUBLISH_ADDRESS:-127.0.0.1}"} or \
        address.endswith(":-127.0.0.1}")


def compose_problems(text: str) -> list[str]:
    """What is wrong with a compose file's text (empty: nothing)."""
    problems = []
    if ":?" in text:
        problems.append("a ${VAR:?...} makes every compose command (down, logs) fail when "
                        "VAR is unset")
    document: dict[str, Any] = yaml.safe_load(text) or {}
    services: dict[str, Any] = document.get("services") or {}
    for name in APP_SERVICES:
        service = services.get(name)
        if not isinstance(service, dict):
            problems.append(f"no service {name!r}")
            continue
        env_files = service.get("env_file") or []
        if not any(isinstance(item, dict) and item.get("path") == ".env"
                   and item.get("required") is False for item in env_files):
            problems.append(f"{name}: no optional .env (env_file: [{{path: .env, "
                            f"required: false}}])")
        if name in PROCESSES:
            command = service.get("command")
            if command != f"python -m smartcache.commands {name}":
                problems.append(f"{name}: command {command!r} is not "
                                f"'python -m smartcache.commands {name}'")
            test = (service.get("healthcheck") or {}).get("test") or []
            if test[-2:] != ["scripts/healthcheck.py", name]:
                problems.append(f"{name}: no healthcheck 'scripts/healthcheck.py {name}'")
    for name, service in services.items():
        for port in (service or {}).get("ports") or []:
            if not published_on_loopback(str(port)):
                problems.append(f"{name}: port {port!r} is published on every interface "
                                "(default it to 127.0.0.1)")
    return problems


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    if not re.search(r"^ARG BASE(=\S+)?$", text, re.M):
        problems.append("Dockerfile: no 'ARG BASE' (the base image as a build argument)")
    if not re.search(r"^FROM \$\{?BASE\}?\s*$", text, re.M):
        problems.append("Dockerfile: not 'FROM ${BASE}'")
    return problems


def dockerignore_problems(text: str) -> list[str]:
    """The build context must not carry var/ (the secret key, the admin
    password), the venv or git: either everything is ignored and the code
    allowed back, or those are ignored by name."""
    lines = {line.strip().rstrip("/") for line in text.splitlines()
             if line.strip() and not line.startswith("#")}
    if "*" in lines:
        allowed = {line[1:] for line in lines if line.startswith("!")}
        leaks = [name for name in ("var", ".venv", ".git") if name in allowed]
        return [f".dockerignore lets {name} back in" for name in leaks]
    return [f".dockerignore does not exclude {name}" for name in ("var", ".venv", ".git")
            if name not in lines]


def env_example_problems(settings_text: str, example_text: str) -> list[str]:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example_text, re.M))
    read = set(SETTING_READ.findall(settings_text)) - NOT_FOR_OPERATORS
    return [f".env.example does not mention {name} (smartcache/settings/ reads it)"
            for name in sorted(read - documented)]


def problems(compose_file: Path) -> list[str]:
    found = compose_problems(compose_file.read_text())
    found += dockerfile_problems((ROOT / "Dockerfile").read_text())
    ignore = ROOT / ".dockerignore"
    found += dockerignore_problems(ignore.read_text()) if ignore.exists() else [
        "no .dockerignore: var/ (secrets) and .venv would be in the build context"]
    settings_text = "\n".join(path.read_text() for path in
                              sorted((ROOT / "smartcache" / "settings").glob("*.py")))
    found += env_example_problems(settings_text, (ROOT / ".env.example").read_text())
    return found


def engine_config(compose_file: Path) -> str | None:
    """`docker compose config -q`'s complaint, or None (also when there is no
    compose plugin to ask)."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    plugin = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    if plugin.returncode != 0:
        return None
    result = subprocess.run([docker, "compose", "-f", str(compose_file), "config", "-q"],
                            capture_output=True, text=True, check=False, cwd=ROOT)
    return None if result.returncode == 0 else result.stderr.strip()


def main(argv: list[str]) -> int:
    compose_file = Path(argv[0]) if argv else ROOT / "docker-compose.yml"
    found = problems(compose_file)
    if (complaint := engine_config(compose_file)) is not None:
        found.append(f"docker compose config: {complaint}")
    for problem in found:
        print(f"compose check: {problem}", file=sys.stderr)
    if found:
        return 1
    print(f"compose check: {compose_file.name}, Dockerfile, .dockerignore and .env.example "
          "are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
