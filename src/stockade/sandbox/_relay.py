"""The in-sandbox relay for the allowlist profile (runs inside the sandbox, python3 -S -c).

It listens on 127.0.0.1:3128 in the sandbox's own network namespace, forwards each connection
to the runner's proxy socket bound at ``/run/stockade/proxy.sock``, and runs the workload as its
child, exiting with the workload's status. The workload may kill it: that only cuts its own
egress.
"""

from __future__ import annotations

__all__ = ["PROXY_DIR", "PROXY_PORT", "RELAY_SOURCE", "relay_argv"]

PROXY_DIR = "/run/stockade"
PROXY_PORT = 3128

RELAY_SOURCE = r"""
import os, socket, sys, threading
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def serve(srv):
    while True:
        c, _ = srv.accept()
        u = socket.socket(socket.AF_UNIX)
        try:
            u.connect(sys.argv[2])
        except OSError:
            c.close(); continue
        threading.Thread(target=pump, args=(c, u), daemon=True).start()
        threading.Thread(target=pump, args=(u, c), daemon=True).start()
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(64)
threading.Thread(target=serve, args=(srv,), daemon=True).start()
pid = os.fork()
if pid == 0:
    srv.close()
    os.execvp(sys.argv[3], sys.argv[3:])
_, status = os.waitpid(pid, 0)
os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
"""


def relay_argv(argv: tuple[str, ...], python: str = "/usr/bin/python3") -> tuple[str, ...]:
    sock = f"{PROXY_DIR}/proxy.sock"
    return (python, "-S", "-c", RELAY_SOURCE, str(PROXY_PORT), sock, *argv)
