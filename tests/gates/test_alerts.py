"""Alert hooks: a failing gate fires them; a failing hook is reported and never hides the FAIL."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from stockade.cli import main
from stockade.gates import Alert, AlertError, CommandHook, WebhookHook, make_alert

from .conftest import StepClock


def _alert() -> Alert:
    return make_alert("gate_failed", "preflight", "policy hash recorded: mismatch", StepClock())


def test_a_command_hook_gets_the_alert_as_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    script = f"import sys, pathlib; pathlib.Path({str(out)!r}).write_bytes(sys.stdin.buffer.read())"
    CommandHook([sys.executable, "-c", script]).fire(_alert())
    body = json.loads(out.read_text())
    assert (body["kind"], body["subject"]) == ("gate_failed", "preflight")


def test_a_failing_or_hanging_command_hook_raises(tmp_path: Path) -> None:
    with pytest.raises(AlertError, match="exited 3"):
        CommandHook([sys.executable, "-c", "raise SystemExit(3)"]).fire(_alert())
    with pytest.raises(AlertError):
        CommandHook([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5).fire(
            _alert()
        )


def test_a_webhook_hook_posts_the_alert_and_fails_on_non_2xx() -> None:
    seen: list[dict[str, object]] = []

    def ok(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(204)

    WebhookHook("http://127.0.0.1:9/alert", transport=httpx.MockTransport(ok)).fire(_alert())
    assert seen[0]["kind"] == "gate_failed"
    bad = WebhookHook(
        "http://127.0.0.1:9/", transport=httpx.MockTransport(lambda _r: httpx.Response(500))
    )
    with pytest.raises(AlertError, match="HTTP 500"):
        bad.fire(_alert())
    with pytest.raises(AlertError, match="neither https nor loopback"):
        WebhookHook("http://alerts.example.invalid/")


@pytest.mark.guarantee("cp-gate-alert")
def test_a_failing_postflight_fires_the_alert_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path))
    out = tmp_path / "alert.json"
    script = tmp_path / "hook.py"
    script.write_text(
        f"import sys, pathlib\npathlib.Path({str(out)!r}).write_bytes(sys.stdin.buffer.read())\n"
    )
    with pytest.raises(SystemExit) as e:
        main(["postflight", "nope", "--alert-command", f"{sys.executable} {script}"])
    assert e.value.code == 1
    alert = json.loads(out.read_text())
    assert alert["subject"] == "postflight nope"
    assert "run recorded" in alert["data"]["failed"]
    assert datetime.fromisoformat(alert["ts"]).tzinfo is not None


@pytest.mark.parametrize(
    "url", ["http://localhost.example.invalid/", "http://127.0.0.1.example.invalid/", "file:///x"]
)
def test_lookalike_loopback_webhooks_are_refused(url: str) -> None:
    with pytest.raises(AlertError, match="neither https nor loopback"):
        WebhookHook(url)
