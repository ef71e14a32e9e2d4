"""Prospecting: the daily run, one job per prospect (enrich, score, draft, queue), and the
records they keep."""
