"""The portal: web pages for researchers, data access committees and operators.

Served by the node (``genomenode serve``) and by the network (``genomenode
network serve``) at ``/``, from the same templates, so both look the same. See
docs/portal.md. :func:`~genomenode.portal.site.mount_portal` adds it to an app;
:func:`node_portal` and :func:`network_portal` say what it is the portal of.
"""

from __future__ import annotations

from .build import network_portal, node_portal
from .site import Portal, mount_portal

__all__ = ["Portal", "mount_portal", "network_portal", "node_portal"]
