"""Downstream server lifecycle: start (eager or lazy), refresh and pin, idle stop, restart with
backoff, and the terminal dispatch of a tool call to its server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

from stockade.errors import StockadeError

from ._chain import CallContext, ToolResult
from ._config import ServerSpec, package_identity
from ._downstream import DownstreamSession
from ._errors import DownstreamError, NamespaceError
from ._names import Namespace, qualify
from ._pins import Pending, merge_pending, reconcile
from ._state import GatewayState

__all__ = ["ServerLifecycle"]


class ServerLifecycle(GatewayState):
    async def start(self) -> None:
        """Start every ``eager`` server; ``lazy`` ones start when first listed or called."""
        for name, session in self.sessions.items():
            if session.spec.start == "lazy":
                self._lazy.add(name)
                continue
            await self._first_start(name)

    async def stop_idle(self) -> list[str]:
        """Stop running servers unused for longer than their ``idle_stop_s``; returns them.

        Their tools stay listed; the next call restarts the server (and re-checks its pins).
        """
        now = self._clock.now()
        stopped: list[str] = []
        for name, session in self.sessions.items():
            limit = session.spec.idle_stop_s
            last = self._last_used.get(name)
            if limit is None or not session.running or last is None:
                continue
            if (now - last).total_seconds() >= limit:
                await session.close()
                self._idle.add(name)
                stopped.append(name)
                self._audit.append("gateway.server_idle_stop", {"server": name, "idle_s": limit})
        return stopped

    async def _first_start(self, name: str) -> None:
        self._lazy.discard(name)
        self._packages.pop(name, None)  # re-hash the package tree at every start
        self._last_used[name] = self._clock.now()
        session = self.sessions[name]
        try:
            await session.start()
            await self.refresh(name)
        except DownstreamError as e:
            self._audit.append("gateway.server_failed", {"server": name, "error": e.what})
            self.backoff.failed(name)
            await session.close()

    async def _start_lazy(self, only: str | None = None) -> None:
        for name in sorted(self._lazy):
            if only is None or name == only:
                await self._first_start(name)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for session in self.sessions.values():
            await session.close()

    def _new_session(self, spec: ServerSpec) -> DownstreamSession:
        def notified(method: str, params: dict[str, Any]) -> None:
            self._server_notification(spec.name, method, params)

        return DownstreamSession(
            spec,
            self._launcher,
            max_message_bytes=self.config.max_message_bytes,
            on_list_changed=self._refresher(spec.name),
            on_notification=notified,
        )

    def _refresher(self, server: str) -> Callable[[], None]:
        return lambda: self._schedule_refresh(server)

    def _schedule_refresh(self, server: str) -> None:
        # Coalesced: a server flooding list_changed gets one refresh running and one queued.
        if server in self._refreshing:
            self._dirty.add(server)
            return
        self._refreshing.add(server)
        task = asyncio.get_running_loop().create_task(self._refresh_and_notify(server))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_and_notify(self, server: str) -> None:
        before = self._exposed.get(server, {})
        try:
            while True:
                self._dirty.discard(server)
                try:
                    await self.refresh(server)
                except StockadeError as e:  # a background task: fail closed, hide its tools
                    self._exposed[server] = {}
                    self._audit.append("gateway.server_failed", {"server": server, "error": e.what})
                if server not in self._dirty:
                    break
        finally:
            self._refreshing.discard(server)
        if self._exposed.get(server, {}) != before and self._notify is not None:
            await self._notify({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})

    async def refresh(self, server: str) -> None:
        """Re-list a server's tools and recompute what is exposed (pins decide)."""
        session = self.sessions[server]
        tools = await session.list_tools()
        others = tuple(
            n
            for s, tools_ in self._exposed.items()
            if s != server
            for t in tools_
            for n in (t, qualify(s, t))
        )
        spec = session.spec
        package = self.package_identity(server)
        current = self._pins.load(server)
        rec = reconcile(current, package, tools, tofu=spec.tofu, other_tools=others)
        if rec.pins != current:
            self._pins.save(rec.pins)
        self._save_pending(server, package, rec.pending, prompts=False)
        for ev in rec.events:
            self._audit.append("gateway.pin", {"server": server, **ev})
        ns = Namespace()
        for s, tools_ in self._exposed.items():
            if s != server:
                for t in tools_:
                    ns.add(s, t)
        exposed: dict[str, dict[str, Any]] = {}
        for name, definition in rec.exposed.items():
            try:
                ns.add(server, name)
            except NamespaceError as e:
                self._audit.append(
                    "gateway.pin",
                    {"server": server, "event": "pin.rejected", "tool": name, "error": e.what},
                )
                continue
            exposed[name] = definition
        self._exposed[server] = exposed

    def _save_pending(
        self, server: str, package: str, pending: dict[str, Pending], *, prompts: bool
    ) -> bool:
        """Replace the tool (or prompt) half of a server's pending list; whether it changed."""
        old_package, old = self._pins.load_pending(server)
        merged = merge_pending(old if old_package == package else {}, pending, prompts=prompts)
        if old_package == package and merged == old:
            return False
        self._pins.save_pending(server, package, merged)
        return True

    def package_identity(self, server: str) -> str:
        """The identity pins bind to: the configured package plus the tree hash, computed once."""
        if server not in self._packages:
            spec = self.sessions[server].spec
            self._packages[server] = package_identity(spec)
        return self._packages[server]

    async def _dispatch(self, ctx: CallContext) -> ToolResult:
        session = self.sessions.get(ctx.call.server)
        if session is None:
            return {"content": [{"type": "text", "text": "no such server"}], "isError": True}
        server = ctx.call.server
        self._last_used[server] = self._clock.now()
        try:
            if not session.running:
                wait = self.backoff.wait_s(server)
                if wait > 0:
                    raise DownstreamError(
                        f"server {server!r} is down; next restart attempt in {wait:.1f}s",
                        "retry later, or see the server's run trace",
                    )
                session = await self._restart(server)
            if ctx.progress_token is None:
                return await session.call_tool(ctx.call.tool, ctx.call.arguments)
            token = f"stockade-progress-{secrets.token_hex(8)}"  # the agent's never goes down
            self._progress[token] = (server, ctx.progress_token, ctx.notify)
            try:
                meta = {"progressToken": token}
                return await session.call_tool(ctx.call.tool, ctx.call.arguments, meta=meta)
            finally:
                self._progress.pop(token, None)
        except DownstreamError as e:
            ctx.outcome = "downstream-error"
            if not self.sessions[server].running and self.backoff.wait_s(server) == 0:
                self.backoff.failed(server)
            return {"content": [{"type": "text", "text": f"stockade: {e.what}"}], "isError": True}

    def _revive_down_servers(self) -> None:
        """Servers that are down and past their backoff are restarted in the background."""
        for name, session in self.sessions.items():
            if (
                session.running
                or name in self._refreshing
                or name in self._lazy
                or name in self._idle
                or self.backoff.wait_s(name) > 0
            ):
                continue
            self._refreshing.add(name)
            task = asyncio.get_running_loop().create_task(self._revive(name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _revive(self, server: str) -> None:
        before = self._exposed.get(server, {})
        try:
            await self._restart(server)
        except StockadeError as e:  # a background task: fail closed, hide its tools
            self.backoff.failed(server)
            self._exposed[server] = {}
            self._audit.append("gateway.server_failed", {"server": server, "error": e.what})
        finally:
            self._refreshing.discard(server)
        if self._exposed.get(server, {}) != before and self._notify is not None:
            await self._notify({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})

    async def _restart(self, server: str) -> DownstreamSession:
        """Restart a crashed server (its backoff has passed); its tools are re-pinned."""
        old = self.sessions[server]
        await old.close()
        fresh = self._new_session(old.spec)
        self.sessions[server] = fresh
        self._idle.discard(server)
        self._packages.pop(server, None)  # re-hash the package tree at every start
        self._audit.append(
            "gateway.server_restart", {"server": server, "failures": self.backoff.failures(server)}
        )
        try:
            await fresh.start()
            await self.refresh(server)
        except DownstreamError:
            await fresh.close()
            raise
        self.backoff.succeeded(server)
        return fresh
