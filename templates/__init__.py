"""The default job script template; installed as the package `orchestrator.templates` (see pyproject)."""
