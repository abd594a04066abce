"""kopf handlers: thin glue from Kubernetes events to reconcile/ and providers/.

Importing this package registers every handler with kopf's default registry.
"""

from notebook_operator.handlers import idlecullerpolicy, notebookinstance, notebooksnapshot, providerconfig, startup

__all__ = ["idlecullerpolicy", "notebookinstance", "notebooksnapshot", "providerconfig", "startup"]
