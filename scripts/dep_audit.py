"""Audit the installed Python dependencies against PyPI's vulnerability data (pip-audit).

Fails on any known vulnerability unless it is waived in ``scripts/audit-waivers.txt`` as
``<VULN-ID> <reason>`` (one per line; a waiver without a reason is rejected). An unreachable
vulnerability service is a failure too: no audit, no pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WAIVERS = Path(__file__).with_name("audit-waivers.txt")


def waivers() -> list[str]:
    ids: list[str] = []
    for n, raw in enumerate(WAIVERS.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        vid, _, reason = line.partition(" ")
        if not reason.strip():
            print(f"{WAIVERS}:{n}: waiver {vid} has no reason", file=sys.stderr)
            sys.exit(1)
        ids.append(vid)
    return ids


def main() -> int:
    cmd = [
        sys.executable,
        "-m",
        "pip_audit",
        "--vulnerability-service",
        "pypi",
        "--skip-editable",
        "--progress-spinner",
        "off",
    ]
    for vid in waivers():
        cmd += ["--ignore-vuln", vid]
    return subprocess.run(cmd, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
