"""Run IDs: WandB's form (8 characters of [a-z0-9]), generated here when WandB is disabled."""

import secrets
import string

ALPHABET = string.ascii_lowercase + string.digits


def new_run_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(8))
