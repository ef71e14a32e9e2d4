"""The worker's HTTP surface, named once: the manifests, probes and tests read these."""

METRICS_PATH = "/metrics"
HEALTH_PATH = "/healthz"  # this pod's own worker loop is alive (liveness, startup)
READY_PATH = "/readyz"  # this pod can reach Redis (readiness)
