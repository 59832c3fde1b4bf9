"""HTML of the approval page (pure): every value is escaped; there is no script at all.

The page renders attacker-controlled arguments, so everything from a request goes through
:func:`e` (``safe_text`` to make hidden and bidi characters visible, then ``html.escape``).
Untrusted parts are shown inside ``<pre class="untrusted">`` blocks labelled as such.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from datetime import datetime

from stockade.textsafe import safe_text

from ._kill import KillSwitch
from ._machine import ApprovalRequest

__all__ = ["STYLE", "e", "history_page", "index_page", "login_page", "message_page"]

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem;color:#111}
h1{font-size:1.4rem}.req{border:1px solid #999;border-radius:6px;padding:.8rem;margin:1rem 0}
.untrusted{background:#fff3f3;border-left:4px solid #c00;padding:.5rem;white-space:pre-wrap;
word-break:break-all;max-height:20rem;overflow:auto}
.label{font-size:.8rem;color:#900;font-weight:bold;text-transform:uppercase}
.state-expired,.state-denied,.state-cancelled{color:#900}.state-approved,.state-consumed{color:#060}
.kill{background:#c00;color:#fff;padding:.6rem;font-weight:bold}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left}
form.inline{display:inline}button{margin-right:.4rem}
"""


def e(value: object, limit: int = 2000) -> str:
    return html.escape(safe_text(str(value), limit=limit), quote=True)


def _doc(title: str, body: str, refresh_s: int = 0) -> str:
    refresh = f'<meta http-equiv=refresh content="{int(refresh_s)}">' if refresh_s > 0 else ""
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8>{refresh}"
        f"<title>{e(title)}</title><link rel=stylesheet href=/static/style.css></head>"
        f"<body>{body}</body></html>"
    )


def _csrf(token: str) -> str:
    return f'<input type=hidden name=csrf value="{e(token)}">'


def login_page(error: str = "") -> str:
    err = f'<p class="state-denied" id=error>{e(error)}</p>' if error else ""
    return _doc(
        "stockade approvals: log in",
        "<h1>stockade approvals</h1>"
        f"{err}<form method=post action=/login>"
        "<label>operator <input name=operator id=operator autocomplete=username></label> "
        "<label>token <input name=token id=token type=password "
        "autocomplete=current-password></label> <button id=login>log in</button></form>",
    )


def message_page(title: str, text: str) -> str:
    return _doc(title, f"<h1>{e(title)}</h1><p id=message>{e(text)}</p><a href=/>back</a>")


def _remaining(r: ApprovalRequest, now: datetime) -> str:
    secs = int((r.expires_at - now).total_seconds())
    if secs <= 0:
        return "expired"
    return f"expires in {secs // 60}m {secs % 60}s"


def _request(r: ApprovalRequest, now: datetime, csrf: str) -> str:
    args = json.dumps(r.call.arguments, indent=2, sort_keys=True, ensure_ascii=False)
    rid = e(r.id)
    return (
        f'<div class=req id="req-{rid}" data-state="{e(r.state.value)}">'
        f'<label><input type=checkbox form=batch name=item value="{rid}:{e(r.digest)}" '
        f"class=pick> reviewed: include in batch</label>"
        f"<h2>{e(r.call.server, 80)}__{e(r.call.tool, 120)}</h2>"
        f"<p>category <b>{e(r.category.value)}</b> &middot; "
        f'<span class="expiry">{e(_remaining(r, now))}</span> '
        f"({e(r.expires_at.isoformat())}) &middot; client {e(r.call.client, 80)} &middot; "
        f"session {e(r.call.session or '-', 80)}</p>"
        f"<p>why flagged: {e(r.reason, 600)} <small>(rule {e(r.rule or '-')})</small></p>"
        "<div class=label>taint provenance</div><ul class=provenance>"
        + ("".join(f"<li>{e(p, 300)}</li>" for p in r.provenance[:20]) or "<li>none recorded</li>")
        + "</ul>"
        "<div class=label>arguments &mdash; untrusted, supplied by the agent</div>"
        f"<pre class=untrusted>{e(args, 20000)}</pre>"
        f"<p><small>request {rid} &middot; digest {e(r.digest)}</small></p>"
        f"<form method=post action=/decide class=inline>{_csrf(csrf)}"
        f'<input type=hidden name=id value="{rid}"><input type=hidden name=digest '
        f'value="{e(r.digest)}"><button name=action value=approve class=approve>approve'
        f"</button><button name=action value=deny class=deny>deny</button></form></div>"
    )


def index_page(
    operator: str,
    csrf: str,
    pending: Iterable[ApprovalRequest],
    now: datetime,
    kill: KillSwitch,
) -> str:
    items = list(pending)
    banner = (
        f"<p class=kill id=kill-banner>KILL SWITCH ENGAGED by {e(kill.by)}: {e(kill.reason)}</p>"
        if kill.engaged
        else ""
    )
    body = "".join(_request(r, now, csrf) for r in items) or "<p id=empty>nothing pending</p>"
    batch = (
        f"<form method=post action=/batch id=batch>{_csrf(csrf)}"
        "<p>selected items: <button name=action value=approve id=batch-approve>approve "
        "selected</button><button name=action value=deny id=batch-deny>deny selected</button>"
        "</p></form>"
        if items
        else ""
    )
    kill_form = (
        f"<form method=post action=/kill>{_csrf(csrf)}<input name=reason required "
        "placeholder='why'> <button id=kill>KILL: deny everything</button></form>"
        if not kill.engaged
        else ""
    )
    return _doc(
        "stockade approvals",
        f"<h1>stockade approvals</h1><p>logged in as <b>{e(operator)}</b> &middot; "
        "<a href=/>refresh</a> &middot; <a href=/history>history</a> &middot; "
        f"<form method=post action=/logout class=inline>{_csrf(csrf)}<button>log out</button>"
        f"</form></p>{banner}{kill_form}<h2>pending ({len(items)})</h2>{batch}{body}",
        # Live updates without script: while nothing is pending the page reloads itself to show
        # new requests; while requests are shown it never reloads under the reviewer.
        refresh_s=0 if items else 5,
    )


def history_page(requests: Iterable[ApprovalRequest]) -> str:
    rows = "".join(
        f'<tr id="h-{e(r.id)}"><td>{e(r.id)}</td><td>{e(r.call.server, 80)}__'
        f"{e(r.call.tool, 120)}</td><td>{e(r.category.value)}</td>"
        f'<td class="state-{e(r.state.value)}">{e(r.state.value)}</td>'
        f"<td>{e(r.decided_by or '-')} via {e(r.channel or '-')}</td>"
        f"<td>{e(r.note or r.reason, 300)}</td><td>{e(r.created_at.isoformat())}</td></tr>"
        for r in requests
    )
    return _doc(
        "stockade approvals: history",
        "<h1>history</h1><a href=/>back</a><table><tr><th>id</th><th>call</th><th>category</th>"
        f"<th>state</th><th>decided</th><th>note</th><th>created</th></tr>{rows}</table>",
    )
