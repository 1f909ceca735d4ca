"""Grounded chat: the chat service, sessions persisted in SQLite, and the tools models may call."""
