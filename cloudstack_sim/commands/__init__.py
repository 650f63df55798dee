"""Command handlers by area; importing this package registers them all in ``spec.COMMANDS``.

To add an area, write ``commands/<area>.py`` with ``@command("...")`` handlers and ``@renderer``
functions, and add its name below.
"""

from . import (accounts, async_jobs, catalog, keypairs, network, security_groups, tags,  # noqa: F401
               templates, vm, volumes)
