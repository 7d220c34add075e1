"""The sandbox company: the business systems the scenarios act on, as real running parts.

A CRM, a support desk, a marketing tool and an ERP (catalogue and purchase orders) are small HTTP
services with OpenAPI documents on free ports of 127.0.0.1; a finance mailbox is an SMTP server whose
mail people can read. All are backed by one SQLite database seeded from sample data shipped in the
package. Workflows reach them only through the connector layer (``openapi``, ``smtp``, ``sql``)::

    from podium.sandbox import Sandbox

    with Sandbox() as company:
        async with Client(connectors=company.connectors()) as client:
            await client.run(workflow, {...})
        print(company.received())          # what each system received

``podium demo`` starts one, runs a scenario, shows what each system received, and stops it. See
``docs/scenarios.md``.
"""

from __future__ import annotations

from ._company import Sandbox, shared, use
from ._db import sample

__all__ = ["Sandbox", "sample", "shared", "use"]
