"""Checking a handler's payload against a pydantic model, with a one-line error."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from jobqueue.runtime.failures import PermanentJobError

__all__ = ["parse_payload"]

M = TypeVar("M", bound=BaseModel)


def parse_payload(model: type[M], payload: Any, handler: str) -> M:
    """Validate ``payload``; a bad one raises PermanentJobError (retrying can't fix it)."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors()
        )
        raise PermanentJobError(f"bad payload for {handler}: {problems}") from None
