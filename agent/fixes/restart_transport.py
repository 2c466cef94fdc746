"""restart-transport: the one MSExchangeTransport restart a host's plan holds, shared by every
fix whose change takes effect only after it (Set-TransportService docs: changes need a restart
of the Microsoft Exchange Transport service; Set-DnsClientServerAddress: transport reads the
NIC's DNS servers when it starts).

No rule names this fix: the plan builder adds the step, once after the automatic changes that
need it and once after the manual ones, so it has no planner of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.fixes._draft import Draft
from agent.fixes.spec import FixSpec, Step
from agent.model.command import CmdletCall, Endpoint
from agent.model.plan import (
    RESTART_KIND,
    TRANSPORT_SERVICE,
    Change,
    FactArea,
    FactRef,
    restart_transport_call,
)

FIX_ID = "restart-transport"


def draft(needing: Sequence[Draft], *, manual: bool) -> Draft | None:
    """The restart for ``needing`` (the drafts of one host), or None when none needs one."""
    wanting = [d for d in needing if d.restart_required]
    if not wanting:
        return None
    when = "after the manual steps above" if manual else "so the changes above take effect"
    return Draft(
        kind=RESTART_KIND,
        fix_id=FIX_ID,
        call=restart_transport_call(),
        description=(
            f"Restart the Exchange transport service ({TRANSPORT_SERVICE}) {when}. Mail flow on this server "
            "stops while it restarts; queued messages are kept and delivered afterwards"
        ),
        changes=(Change("Status", None, "Running"),),
        read_back=CmdletCall(Endpoint.OS, "Get-Service", (("Name", TRANSPORT_SERVICE),)),
        rollback=(),
        restart_required=False,
        finding_ids=tuple(dict.fromkeys(f for d in wanting for f in d.finding_ids)),
        depends_on=(FactRef(FactArea.EXCHANGE_SERVER),),
        manual=manual,
        disruptive=True,
    )


SPEC = FixSpec(
    id=FIX_ID,
    summary="Restart-Service MSExchangeTransport once, after the changes that take effect only then",
    disrupts_mail_flow=True,
    planner=None,
    template="_restart-transport",
    # Out of mail flow for about two minutes: Restart-Service waits for MSExchangeTransport to
    # stop (it ends its SMTP sessions and closes the queue database, mail.que, an ESE database)
    # and to start again (it reads its configuration from Active Directory, mounts mail.que and
    # opens the Receive connectors). Microsoft gives no duration for it; a mailbox server
    # takes from well under a minute to a few minutes, longer with a large queue database.
    # Senders retry a refused or deferred connection (RFC 5321 4.5.4.1), so mail is delayed,
    # not lost. The review page shows the figure as an estimate.
    steps=(Step(RESTART_KIND, outage_estimate_s=120),),
    reads=(FactArea.EXCHANGE_SERVER,),
)
