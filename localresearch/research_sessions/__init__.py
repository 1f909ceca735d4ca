"""Research sessions: questions → feedback → plan → execute → refine, durable in SQLite."""
