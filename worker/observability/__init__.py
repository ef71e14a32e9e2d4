"""What the worker tells the outside: Prometheus metrics, health probes, logs, the background
sampler, and the `stats` view read from Redis alone."""
