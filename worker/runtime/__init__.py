"""The runtime: a job's spec, the one place that wraps every try and decides its outcome
(retry, dead letter, done), how a failure is classified, progress records and dead letters."""
