"""grpo-lab: GRPO training runs on arithmetic tasks, recorded and journaled."""

__version__ = "0.1.0"
