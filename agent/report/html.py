"""review.html: the change board's page as one self-contained HTML file.

It says the same as REVIEW.md, laid out for a person reading in a browser: plain language
first (what is wrong, what changes, whether mail stops, what to approve), then per host the
findings with their evidence, the steps with their risk, and the exact remediate.ps1 and
rollback.ps1 with line numbers.

Self-contained and inert: the CSS is inline, there is no script, no image, no font, no link
that needs the network, and a Content-Security-Policy of ``default-src 'none'`` tells the
browser to load nothing even if something slipped through. Every value that came from a
host (and every line of the scripts, which quote such values) passes through :func:`_text`:
:func:`agent.report.safe.terminal` first, so a bidi override or an escape sequence is shown as
an escape instead of reordering or hiding what the reviewer reads, then ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from agent.model.findings import Finding
from agent.model.plan import REMEDIATE_SCRIPT, ROLLBACK_SCRIPT, HostPlan, Plan
from agent.planning.render import RenderedHost, environment, format_value, host_view
from agent.report.review_md import apply_command
from agent.report.safe import terminal

REVIEW_HTML = "review.html"
# Load nothing from anywhere; only the inline style sheet applies.
CSP = "default-src 'none'; style-src 'unsafe-inline'"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.3rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.1rem;margin-top:1.6rem}h4{font-size:1rem;margin:1.2rem 0 .4rem}
.plain{background:#f3f6fa;border-left:4px solid #2a5d9f;padding:.6rem 1rem}
.stop{color:#9b1c1c;font-weight:bold}.ok{color:#1d6b2f;font-weight:bold}
table{border-collapse:collapse;margin:.4rem 0 1rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}
code,pre,.script td{font-family:ui-monospace,Consolas,"Courier New",monospace;font-size:.85rem}
.digest{font-size:1rem;background:#fff8db;padding:.2rem .4rem;word-break:break-all}
pre.cmd{background:#f6f6f6;border:1px solid #ddd;padding:.6rem;white-space:pre-wrap;word-break:break-all}
table.script{width:100%;border:1px solid #ddd}
table.script td{border:none;padding:0 .5rem;white-space:pre-wrap;word-break:break-all}
table.script td.ln{color:#888;text-align:right;user-select:none;width:3.5rem;border-right:1px solid #ddd}
.muted{color:#666}
"""


def _text(value: object) -> str:
    """A value made safe to read (control and format characters escaped) and to put in HTML."""
    return html.escape(terminal(value), quote=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _restarts(host: HostPlan) -> bool:
    return any(a.disruptive and not a.manual for a in host.actions)


def _summary(plan: Plan) -> list[str]:
    findings = sum(len(h.findings) for h in plan.hosts)
    automatic = [a for a in plan.actions if not a.manual]
    manual = [a for a in plan.actions if a.manual]
    changed = [h for h in plan.hosts if h.automatic]
    restarting = [h for h in plan.hosts if _restarts(h)]
    out = ['<section class="plain">', "<h2>In plain words</h2>", "<p>"]
    out.append(
        f"exfix looked at {_plural(len(plan.hosts), 'Exchange server')} and found "
        f"{_plural(findings, 'problem')} behind the error &#x27;451 4.4.0 DNS query failed&#x27;, "
        "which holds outgoing or internal mail in the queues."
    )
    out.append("</p><p>")
    if automatic:
        out.append(
            f"It plans {_plural(len(automatic), 'change')} on {_plural(len(changed), 'server')}. Each change "
            "sets one setting to the value shown below, is read back afterwards, and has an undo step in "
            "that server&#x27;s rollback script."
        )
    else:
        out.append("It plans no automatic change.")
    out.append("</p><p>")
    if restarting:
        names = ", ".join(_text(h.host) for h in restarting)
        out.append(
            f'<span class="stop">Mail flow is interrupted</span> on {names}: the Exchange transport '
            "service (MSExchangeTransport) is restarted so the changes take effect. Mail on each such "
            "server stops while its service restarts; queued messages are kept and delivered afterwards."
        )
    else:
        out.append(
            '<span class="ok">Mail flow is not interrupted</span> by the automatic changes: nothing is '
            "restarted."
        )
    out.append("</p>")
    if manual:
        out.append(
            f"<p>{_plural(len(manual), 'step')} must be done by a person on the server (marked MANUAL); "
            "exfix reports them and does not run them.</p>"
        )
    advisories = sum(len(h.advisories) for h in plan.hosts)
    if advisories:
        out.append(
            f"<p>{_plural(advisories, 'finding')} need a decision or a fix outside exfix "
            "(see Advice under each server).</p>"
        )
    out.append(
        "<p><strong>Nothing has been changed yet.</strong> Nothing changes until someone runs the "
        "apply command below with this plan&#x27;s digest.</p>"
    )
    out.append("</section>")
    return out


def _overview(plan: Plan) -> list[str]:
    out = [
        "<h2>Servers</h2>",
        "<table>",
        "<tr><th>server</th><th>findings</th><th>automatic steps</th><th>manual steps</th>"
        "<th>mail flow</th></tr>",
    ]
    for host in plan.hosts:
        flow = '<span class="stop">interrupted (restart)</span>' if _restarts(host) else "not interrupted"
        out.append(
            f'<tr><td><a href="#{_anchor(host)}">{_text(host.host)}</a></td><td>{len(host.findings)}</td>'
            f"<td>{len(host.automatic)}</td><td>{len(host.manual)}</td><td>{flow}</td></tr>"
        )
    out.append("</table>")
    return out


def _approval(plan: Plan, plan_json: str) -> list[str]:
    return [
        "<h2>Approving this plan</h2>",
        f'<p>Digest to approve: <code class="digest" id="digest">{_text(plan.digest)}</code></p>',
        "<p>The command that applies exactly this plan:</p>",
        f'<pre class="cmd" id="apply-command">{_text(apply_command(plan, plan_json))}</pre>',
        "<p>exfix apply refuses, and changes nothing, when:</p>",
        "<ul>",
        "<li>the digest given to <code>--approve</code> is not this plan&#x27;s digest (the plan or its "
        "scripts were changed after review);</li>",
        "<li>a server has drifted: the settings a step depends on are no longer what this plan saw "
        "(plan again);</li>",
        "<li>a step interrupts mail flow (the MSExchangeTransport restart) and <code>--allow-restart</code> "
        "was not given.</li>",
        "</ul>",
        "<p>If a step fails, exfix undoes the steps already done on that server (the rollback script) and "
        "stops.</p>",
    ]


def _anchor(host: HostPlan) -> str:
    # host.directory is the plan's safe, unique name: letters, digits, '.', '_' and '-' only.
    return "host-" + html.escape(host.directory, quote=True)


def _finding(finding: Finding) -> list[str]:
    out = [
        f'<h4>{_text(finding.title)} <span class="muted">({_text(finding.severity.value)})</span></h4>',
        "<ul>",
        f"<li>What was seen: {_text(finding.summary)}</li>",
        f"<li>Rule <code>{_text(finding.rule_id)}</code> on {_text(finding.subject)}</li>",
    ]
    if finding.fix_id:
        disrupts = " (interrupts mail flow: transport restart)" if finding.fix_disrupts_mail_flow else ""
        out.append(f"<li>Fix: <code>{_text(finding.fix_id)}</code>{disrupts}</li>")
    else:
        out.append("<li>Fix: none by exfix</li>")
    if finding.explained_by:
        out.append(f"<li>Explained by: {', '.join(_text(i) for i in finding.explained_by)}</li>")
    out.append("</ul>")
    if finding.evidence:
        out.append("<table><tr><th>evidence from</th><th>about</th><th>values</th></tr>")
        for item in finding.evidence:
            source = item.source + (f" ({item.vantage})" if item.vantage else "")
            values = "<br>".join(f"{_text(k)} = {_text(format_value(v))}" for k, v in item.values)
            out.append(f"<tr><td>{_text(source)}</td><td>{_text(item.subject)}</td><td>{values}</td></tr>")
        out.append("</table>")
    return out


def _script(name: str, text: str, host: HostPlan) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    digest = dict(host.scripts).get(name)
    out = [
        f"<h3>{_text(name)}</h3>",
        f'<p class="muted">hosts/{_text(host.directory)}/{_text(name)}'
        + (f", sha256 <code>{_text(digest)}</code>" if digest else "")
        + "</p>",
        f'<table class="script" data-script="{_text(name)}">',
    ]
    for number, line in enumerate(lines, start=1):
        out.append(f'<tr><td class="ln">{number}</td><td>{_text(line)}</td></tr>')
    out.append("</table>")
    return out


def _host(host: HostPlan, rendered: RenderedHost, digest: str, risks: Iterable[str]) -> list[str]:
    out = [
        f'<section id="{_anchor(host)}">',
        f"<h2>Server {_text(host.host)}</h2>",
        f"<p>Exchange server {_text(host.fqdn)}, version {_text(host.exchange_version)}.</p>",
    ]
    if _restarts(host):
        out.append(
            '<p><span class="stop">Mail flow: interrupted</span> (MSExchangeTransport is restarted).</p>'
        )
    elif any(a.disruptive for a in host.manual):
        out.append(
            "<p>Mail flow: not interrupted by apply; the manual steps restart MSExchangeTransport.</p>"
        )
    else:
        out.append('<p><span class="ok">Mail flow: not interrupted.</span></p>')
    risk_list = list(risks)
    if risk_list:
        out.append("<h3>Risk</h3><ul>")
        out.extend(f"<li>{_text(risk)}</li>" for risk in risk_list)
        out.append("</ul>")
    out.append("<h3>Findings</h3>")
    if not host.findings:
        out.append("<p>No findings.</p>")
    for finding in host.findings:
        out.extend(_finding(finding))
    out.append("<h3>Steps</h3>")
    if host.actions:
        out.append(
            "<table><tr><th>#</th><th>what</th><th>changes</th><th>runs by</th>"
            "<th>interrupts mail flow</th></tr>"
        )
        for n, action in enumerate(host.actions, start=1):
            changes = "<br>".join(
                f"{_text(c.property)}: {_text(format_value(c.before))} &#x2192; "
                f"{_text(format_value(c.after))}"
                for c in action.changes
            )
            runs = "a person (MANUAL)" if action.manual else "exfix apply"
            stops = '<span class="stop">yes</span>' if action.disruptive else "no"
            out.append(
                f"<tr><td>{n}</td><td>{_text(action.description)}</td><td>{changes}</td>"
                f"<td>{runs}</td><td>{stops}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>No change on this server.</p>")
    if host.advisories:
        out.append("<h3>Advice (not changed by exfix)</h3><ul>")
        for advisory in host.advisories:
            variable = f" Set <code>{_text(advisory.variable)}</code>." if advisory.variable else ""
            out.append(f"<li>{_text(advisory.message)}{variable}</li>")
        out.append("</ul>")
    out.extend(_script(REMEDIATE_SCRIPT, rendered.remediate, host))
    out.extend(_script(ROLLBACK_SCRIPT, rendered.rollback, host))
    out.append(f'<p class="muted">Plan digest: <code>{_text(digest)}</code></p>')
    out.append("</section>")
    return out


def render_review_html(plan: Plan, scripts: Mapping[str, RenderedHost], plan_json: str) -> str:
    """review.html for ``plan``; ``scripts`` by host directory (agent.planning.render_plan),
    ``plan_json`` the path of plan.json as the apply command should name it."""
    env = environment()
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>exfix plan {_text(plan.digest[:12])}: review before approval</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<h1>exfix plan: review before approval</h1>",
    ]
    out.extend(_summary(plan))
    out.extend(_approval(plan, plan_json))
    out.extend(_overview(plan))
    for host in plan.hosts:
        view = host_view(host, plan.digest, env)
        out.extend(_host(host, scripts[host.directory], plan.digest, view.risks))
    out.extend(["</body>", "</html>", ""])
    return "\n".join(out)
