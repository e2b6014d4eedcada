"""`orch serve`: HPC Workflows as a Service. A REST API (FastAPI) and a web page over the library API
(orchestrator.api), never over the CLI. Installed with the `serve` extra."""
