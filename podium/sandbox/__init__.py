"""The sandbox company: the business systems the scenarios act on, as real running parts.

A CRM, a support desk, a marketing tool and an ERP (catalogue and purchase orders) are small HTTP
services with OpenAPI documents on free ports of 127.0.0.1; a finance mailbox is an SMTP server whose
mail people can read. All are backed by one SQL database (a SQLite file by default; PostgreSQL or
MariaDB by URL: ``Sandbox(database="postgresql://...")``, ``$PODIUM_SANDBOX_DB``) seeded from sample
data shipped in the package. Workflows reach them only through the connector layer (``openapi``, ``smtp``, ``sql``)::

    from podium.sandbox import Sandbox

    with Sandbox() as company:
        async with Client(connectors=company.connectors()) as client:
            await client.run(workflow, {...})
        print(company.received())          # what each system received

Its systems publish business events (``ticket.opened``, ``order.created``, ``price.changed``...) on an
event bus, so workflows can be triggered by them: NATS when one is configured, else the bus of the
client the sandbox is attached to (``await company.attach(client)``).

``podium demo`` starts one in :func:`default_directory`, runs a scenario, shows what each system
received, and stops it; ``podium serve`` shows the same records on the dashboard's Sandbox page
(:func:`report`). See ``docs/scenarios.md``.
"""

from __future__ import annotations

from ._company import Sandbox, default_directory, shared, use
from ._db import sample
from ._events import EVENTS
from ._report import report

__all__ = ["EVENTS", "Sandbox", "default_directory", "report", "sample", "shared", "use"]
