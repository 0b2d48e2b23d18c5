"""Database readiness for CLI verbs."""


def prepare(verb: str) -> str | None:
    return None
