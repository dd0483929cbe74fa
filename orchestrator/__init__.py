"""orchestrator: plan, submit and track parameter sweeps on Slurm, index-compatible with PyExpUtils."""

from orchestrator.config import ProjectConfig, load_config
from orchestrator.errors import EnvironmentFailure, OrchestratorError, SlurmError, UserError
from orchestrator.planner import ExperimentPlan, IndexInfo, load_experiment, plan_experiment
from orchestrator.slurm_formats import (
    format_memory,
    format_ranges,
    format_time,
    gigs,
    hours,
    parse_memory,
    parse_ranges,
    parse_time,
)
from orchestrator.sweep import Sweep

__version__ = "0.1.0"

__all__ = [
    "EnvironmentFailure",
    "ExperimentPlan",
    "IndexInfo",
    "OrchestratorError",
    "ProjectConfig",
    "SlurmError",
    "Sweep",
    "UserError",
    "format_memory",
    "format_ranges",
    "format_time",
    "gigs",
    "hours",
    "load_config",
    "load_experiment",
    "parse_memory",
    "parse_ranges",
    "parse_time",
    "plan_experiment",
]
