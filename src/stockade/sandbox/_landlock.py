"""Landlock inside the namespaces tier: a file-system allowlist enforced by the kernel.

A stub (run by the host's ``/usr/bin/python3 -S`` inside the sandbox, after bubblewrap built the
mounts and before the workload) restricts itself with Landlock: read and execute under the
system directories and read-only binds, full access under ``/tmp`` and read-write binds, read of
``/proc`` and ``/run/secrets``, read/write of ``/dev`` files; everything else is denied even if a
mount-namespace trick exposed it. It then ``exec``s the command. The rules are computed here
(pure) and passed as JSON.
"""

from __future__ import annotations

import json

from stockade.models import SandboxSpec

from ._layout import HostLayout
from ._oci import SANDBOX_TMP, SECRETS_DIR

__all__ = ["LANDLOCK_STUB", "landlock_rules", "with_landlock"]

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1, 2, 4, 8
READ = EXECUTE | READ_FILE | READ_DIR
ALL = -1  # every right the running kernel's ABI handles

LANDLOCK_STUB = r"""
import ctypes, json, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
abi = libc.syscall(444, None, 0, 1)
if abi < 1:
    sys.stderr.write("stockade: landlock unavailable, refusing to run without it\n")
    os._exit(126)
handled = (1 << 13) - 1
if abi >= 2: handled |= 1 << 13
if abi >= 3: handled |= 1 << 14
if abi >= 5: handled |= 1 << 15
file_rights = 1 | 2 | 4 | (1 << 14) | (1 << 15)
attr = struct.pack("=Q", handled)
rs = libc.syscall(444, attr, len(attr), 0)
if rs < 0:
    os._exit(126)
for path, access in json.loads(sys.argv[1]):
    mask = handled if access == -1 else access & handled
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        continue
    if not os.path.isdir(path):
        mask &= file_rights
    rule = struct.pack("=Qi", mask, fd)
    if libc.syscall(445, rs, 1, rule, 0) != 0:
        err = ctypes.get_errno()
        sys.stderr.write("stockade: landlock rule for %s failed (%d)\n" % (path, err))
        os._exit(126)
    os.close(fd)
libc.prctl(38, 1, 0, 0, 0)
if libc.syscall(446, rs, 0) != 0:
    os._exit(126)
os.close(rs)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def landlock_rules(spec: SandboxSpec, layout: HostLayout) -> list[tuple[str, int]]:
    rules: list[tuple[str, int]] = [(p, READ) for p in layout.ro_binds]
    rules += [("/etc", READ_FILE | READ_DIR), ("/proc", READ_FILE | READ_DIR)]
    rules += [("/dev", READ_FILE | WRITE_FILE | READ_DIR | (1 << 15)), (SANDBOX_TMP, ALL)]
    rules += [(b.target, ALL if b.mode == "rw" else READ) for b in spec.binds]
    if spec.secrets:
        rules.append((SECRETS_DIR, READ_FILE | READ_DIR))
    return rules


def with_landlock(spec: SandboxSpec, layout: HostLayout, python: str) -> SandboxSpec:
    stub = (python, "-S", "-c", LANDLOCK_STUB, json.dumps(landlock_rules(spec, layout)))
    return spec.model_copy(update={"argv": (*stub, *spec.argv)})
