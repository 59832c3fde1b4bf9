"""Scan every tracked file for committed secrets with detect-secrets; exit 1 on any finding.

A finding that is a deliberate test fixture (a fake credential used to test redaction) is waived
in place with an inline ``pragma: allowlist secret`` comment on its line, so each waiver is visible
next to the value it covers.
"""

from __future__ import annotations

import json
import subprocess
import sys


def main() -> int:
    files = subprocess.run(
        ["git", "ls-files", "-z"], check=True, capture_output=True, text=True
    ).stdout.split("\0")
    files = [f for f in files if f]
    if not files:
        print("secret scan: no tracked files (run inside a git checkout)", file=sys.stderr)
        return 1
    out = subprocess.run(
        [sys.executable, "-m", "detect_secrets", "scan", *files],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    results: dict[str, list[dict[str, object]]] = json.loads(out)["results"]
    count = 0
    for path, findings in sorted(results.items()):
        for f in findings:
            count += 1
            print(f"secret scan: {path}:{f['line_number']}: {f['type']}", file=sys.stderr)
    if count:
        print(
            f"secret scan: {count} finding(s). Remove the secret, or if it is a fake test value "
            "add '# pragma: allowlist secret' on its line.",
            file=sys.stderr,
        )
        return 1
    print(f"secret scan: {len(files)} files, no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
