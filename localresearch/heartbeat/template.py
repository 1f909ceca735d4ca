"""The HEARTBEAT.md written into a new workspace (documents the format by example)."""

HEARTBEAT_TEMPLATE = """# Heartbeat

Tasks the daemon runs for you while you are away. On each heartbeat (every 30 minutes by
default, see `[heartbeat]` in config.toml) it runs the tasks under Pending that are due, and
writes what it found to today's log, `memory/YYYY-MM-DD.md`.

<!--
How to write a task: one Markdown list item under "## Pending"; the first line is the question,
and optional indented `key: value` lines below it are its fields:

  priority: high | normal | low     (order within one heartbeat; default normal)
  due:      2026-11-26 08:00        (local time; a date alone means midnight; default: now)
  every:    30m | 2h | 1d | 1w | every 1d at 08:00 | 0 8 * * 1-5 (cron: min hour day month weekday)
  kind:     ask | research          (a quick grounded answer, or a deep research job; default ask)

A one-off task moves to "## Completed" with a timestamp when it has run. A recurring task (with
`every`) stays under Pending and its `due` line is set to its next time. Entries the daemon cannot
read are left exactly as they are and reported by `research heartbeat status`.

Example (outside this comment it would run):

- What changed in my notes about SQLite this week?
  every: every 1w at 09:00
  priority: high
- Survey what my documents say about retrieval-augmented generation
  due: 2026-12-01 08:00
  kind: research

You can also add recurring tasks from the terminal:
  research schedule add "every 1d at 08:00" "Summarise yesterday's notes"
-->

## Pending

## Completed
"""
