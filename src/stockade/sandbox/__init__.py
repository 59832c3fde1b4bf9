"""Local sandbox runner: gVisor (runsc) and namespaces (bubblewrap) backends.

``build_spec`` derives a spec from policy limits plus tighten-only overrides; ``launch`` starts it
(or refuses, naming the missing control) and returns a :class:`Sandbox` handle; ``start_recorded``
does the same while keeping the run store and audit log; ``reap_leftovers`` cleans after a crash.
"""

from ._cgroup_detect import cgroup_root, cgroup_v1_root
from ._egress import EgressPolicy
from ._image import check_image_spec
from ._layout import check_bind, host_layout
from ._pin import tree_digest, verify_pin
from ._pool import WarmPool
from ._probe import GvisorRuntime, find_bwrap, find_gvisor
from ._protocols import RunStoreLike, SecretSource
from ._proxy import EgressProxy
from ._proxy import _splice as splice  # the proxy's byte relay (the cluster egress proxy's too)
from ._reap import reap_leftovers
from ._runner import POLL_INTERVAL_S, Outcome, Sandbox, launch
from ._seccomp import DENIED_SYSCALLS
from ._service import RecordedRun, record_refused, start_recorded
from ._spec import Overrides, PolicyLimits, build_spec, policy_limits

__all__ = [
    "DENIED_SYSCALLS",
    "POLL_INTERVAL_S",
    "EgressPolicy",
    "EgressProxy",
    "GvisorRuntime",
    "Outcome",
    "Overrides",
    "PolicyLimits",
    "RecordedRun",
    "RunStoreLike",
    "Sandbox",
    "SecretSource",
    "WarmPool",
    "build_spec",
    "cgroup_root",
    "cgroup_v1_root",
    "check_bind",
    "check_image_spec",
    "find_bwrap",
    "find_gvisor",
    "host_layout",
    "launch",
    "policy_limits",
    "reap_leftovers",
    "record_refused",
    "splice",
    "start_recorded",
    "tree_digest",
    "verify_pin",
]
