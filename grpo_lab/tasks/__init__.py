"""Tasks: what GRPO trains on. A task is one Python object (tasks/base.py: ``Task``, ``Problem``); the seed's
datasets arithmetic, small_numbers and mixed are the built-in ones (tasks/arithmetic.py); a researcher's own task
comes from a file, a module or an installed package (tasks/loading.py).

This package also keeps the names the rest of grpo-lab used when tasks were one module (``generate_problems``,
``held_out_problems``, the prompt builders, ...), so that code and tests written against them read the same.
"""

from __future__ import annotations

from .arithmetic import (
    COUNT_RANGE,
    COUNT_WORDS,
    DATASET_TYPES,
    OPS,
    SMALL_NUMBERS_RANGE,
    Arithmetic,
    arithmetic_problem,
    arithmetic_prompt,
    check_samples,
    compare_prompt,
    comparison_problem,
    compute,
    count_prompt,
    counting_problem,
    generate_problems,
    held_out_problems,
    max_samples,
    operations,
    overlap,
    reserved,
    resolve_range,
    task_type_of,
    to_dataset,
)
from .base import Problem, Task, draw, exact_reward, first_line

__all__ = [
    "COUNT_RANGE", "COUNT_WORDS", "DATASET_TYPES", "OPS", "SMALL_NUMBERS_RANGE", "Arithmetic", "Problem", "Task",
    "arithmetic_problem", "arithmetic_prompt", "check_samples", "compare_prompt", "comparison_problem", "compute",
    "count_prompt", "counting_problem", "draw", "exact_reward", "first_line", "generate_problems",
    "held_out_problems", "max_samples", "operations", "overlap", "reserved", "resolve_range", "task_type_of",
    "to_dataset",
]  # fmt: skip
