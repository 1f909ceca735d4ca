"""The HEARTBEAT.md written into a new workspace (documents the format by example)."""

HEARTBEAT_TEMPLATE = """# Heartbeat

Tasks the daemon runs for you while you are away.

## Pending

## Completed
"""
