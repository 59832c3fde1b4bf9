"""Audit the installed Python dependencies against PyPI's vulnerability data.

Step 1 runs pip-audit (PyPI service). Some PyPI endpoints serve only the project-level JSON
(``/pypi/NAME/json``) and not the per-version one pip-audit asks for; pip-audit then *skips*
the package ("could not be audited"), which must never pass silently. Step 2 audits every skipped
package from the project-level JSON, whose ``vulnerabilities`` list describes the latest release:
that is an audit of the installed version only when it *is* the latest release.

Fails (exit 1) on: any known vulnerability not waived in ``scripts/audit-waivers.txt``
(``<VULN-ID> <reason>``, a reason is required), any package that could not be audited by either
step and is not waived there as ``unaudited:<name> <reason>``, or an unreachable service.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

WAIVERS = Path(__file__).with_name("audit-waivers.txt")


def _project_json_url() -> str:
    """The package index's project JSON endpoint, as pip itself knows it (override: env)."""
    import os

    base = os.environ.get("STOCKADE_PYPI_JSON")
    if base:
        return base
    from pip._internal.models.index import PyPI  # pip's own record of the default index

    return PyPI.pypi_url.rstrip("/") + "/{name}/json"


PYPI = _project_json_url()


def waivers() -> set[str]:
    ids: set[str] = set()
    for n, raw in enumerate(WAIVERS.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        vid, _, reason = line.partition(" ")
        if not reason.strip():
            print(f"{WAIVERS}:{n}: waiver {vid} has no reason", file=sys.stderr)
            sys.exit(1)
        ids.add(vid)
    return ids


def pip_audit() -> list[dict[str, Any]]:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "--vulnerability-service",
            "pypi",
            "--skip-editable",
            "--progress-spinner",
            "off",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    try:
        deps: list[dict[str, Any]] = json.loads(r.stdout)["dependencies"]
    except (ValueError, KeyError):
        print(f"dependency audit: pip-audit failed:\n{r.stderr[-2000:]}", file=sys.stderr)
        sys.exit(1)
    return deps


def project_vulns(name: str, version: str) -> tuple[str, list[str]]:
    """('ok'|'not-latest'|'error: ...', vulnerability ids) from the project-level JSON."""
    try:
        with urllib.request.urlopen(PYPI.format(name=name), timeout=30) as resp:  # noqa: S310
            data = json.load(resp)
    except (OSError, ValueError) as e:
        return f"error: {e}", []
    latest = data.get("info", {}).get("version")
    if latest != version:
        return f"not-latest (installed {version}, latest {latest})", []
    return "ok", [v.get("id", "?") for v in data.get("vulnerabilities") or []]


def installed_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def main() -> int:
    waived = waivers()
    failures: list[str] = []
    audited = 0
    skipped: list[str] = []
    for dep in pip_audit():
        if "skip_reason" in dep:
            if "editable" not in dep["skip_reason"]:
                skipped.append(dep["name"])
            continue
        audited += 1
        for v in dep.get("vulns", []):
            if v["id"] not in waived:
                fixes = ", ".join(v["fix_versions"]) or "none yet"
                failures.append(f"{dep['name']} {dep['version']}: {v['id']} (fixed in {fixes})")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: (n, *project_vulns(n, installed_version(n))), skipped))
    for name, status, vulns in results:
        if status != "ok":
            if f"unaudited:{name}" not in waived:
                failures.append(f"{name}: could not be audited: {status}")
            continue
        audited += 1
        failures += [f"{name}: {v}" for v in vulns if v not in waived]

    if failures:
        print("dependency audit FAILED:", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        print(
            "  fix: upgrade the package, or waive in scripts/audit-waivers.txt with a reason",
            file=sys.stderr,
        )
        return 1
    print(f"dependency audit: {audited} packages audited, no known vulnerabilities")
    return 0


if __name__ == "__main__":
    sys.exit(main())
