"""Running the local explainers beyond this process: shards of the slice on Ray workers
(``runner: {backend: ray}``)."""
