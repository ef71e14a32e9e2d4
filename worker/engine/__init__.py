"""The engine: every line that knows arq's internals.

Two floors. At the bottom, arq's storage format, which the runtime, the scheduling and the
client may read: the job record and arq's keys (arqjobs), the job serializer (serializer), and
arq's cron job id (catchup). On top, the worker loop (worker): arq's `Worker` with the
project's named changes, which stands on the runtime and the scheduling.
"""
