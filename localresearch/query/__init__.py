"""Queries: one research run answered as a single result (the query API's core), run at once,
streamed step by step, in batches, or in the background with a durable record."""
