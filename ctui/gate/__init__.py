"""The gate and the champion: each succeeded run of a job with a gate is tested against the
job's champion; only a run that passes is promoted."""
