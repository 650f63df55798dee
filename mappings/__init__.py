"""The declarative EC2-to-CloudStack mapping table: one record per EC2 action.

Each module holds the records of one area with the small conversion functions they use;
``ACTIONS`` gathers them by action name for the server's dispatcher.
"""

from __future__ import annotations

from mappings import catalog

ACTIONS = {record.name: record for module in (catalog,) for record in module.RECORDS}
