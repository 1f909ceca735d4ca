"""The heartbeat: recurring tasks from HEARTBEAT.md, run on a fixed schedule."""
