"""Tables of deep research jobs: jobs, their events, step checkpoints, sources and reports."""

from __future__ import annotations

import sqlite3

from localresearch.store.migrations import Migration


def _jobs(conn: sqlite3.Connection) -> None:
    for statement in _STATEMENTS.split(";"):
        if statement.strip():
            conn.execute(statement)


_STATEMENTS = """
        CREATE TABLE research_jobs (
            id TEXT PRIMARY KEY,
            query TEXT NOT NULL,
            session_id TEXT,
            options TEXT NOT NULL,
            status TEXT NOT NULL,
            phase TEXT NOT NULL,
            dimensions_total INTEGER NOT NULL DEFAULT 0,
            dimensions_complete INTEGER NOT NULL DEFAULT 0,
            source_count INTEGER NOT NULL DEFAULT 0,
            last_event_id INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX research_jobs_created ON research_jobs (created_at DESC);
        CREATE INDEX research_jobs_status ON research_jobs (status);

        CREATE TABLE research_events (
            job_id TEXT NOT NULL REFERENCES research_jobs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            step TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            timestamp TEXT NOT NULL,
            PRIMARY KEY (job_id, seq),
            UNIQUE (job_id, step, ordinal)
        ) WITHOUT ROWID;

        CREATE TABLE research_steps (
            job_id TEXT NOT NULL REFERENCES research_jobs(id) ON DELETE CASCADE,
            step TEXT NOT NULL,
            result TEXT NOT NULL,
            usage TEXT NOT NULL,
            completed_at TEXT NOT NULL,
            PRIMARY KEY (job_id, step)
        ) WITHOUT ROWID;

        CREATE TABLE research_sources (
            job_id TEXT NOT NULL REFERENCES research_jobs(id) ON DELETE CASCADE,
            source_id TEXT NOT NULL,
            step TEXT NOT NULL,
            dimension TEXT NOT NULL,
            title TEXT NOT NULL,
            location TEXT NOT NULL,
            url TEXT NOT NULL,
            passage TEXT NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (job_id, source_id)
        );

        CREATE TABLE research_reports (
            job_id TEXT PRIMARY KEY REFERENCES research_jobs(id) ON DELETE CASCADE,
            markdown TEXT NOT NULL,
            sources TEXT NOT NULL,
            partial INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        )
"""

MIGRATIONS: list[Migration] = [("research.001_jobs", _jobs)]
