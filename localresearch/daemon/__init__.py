"""The daemon process: start it detached, find it, stop it, read its logs."""
