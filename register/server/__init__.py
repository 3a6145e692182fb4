"""The Prefect server: bulk reads, the writes of a deploy (client.py) and the work pool checks (pools.py)."""

from register.server.client import Connection, Server, ServerError, connection_from_environment

__all__ = ["Connection", "Server", "ServerError", "connection_from_environment"]
