"""Errors shared across the package (kept out of cli.py, which also runs as ``__main__``)."""

from __future__ import annotations


class CLIError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits ``exit_code`` (default 1)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def describe_validation(exc: Exception, prefix: str = "", names: dict[str, str] | None = None) -> str:
    """Every error of a pydantic ValidationError, one line: ``<where>: <reason>; ...``.

    ``where`` is ``prefix`` + the field's dotted path, followed by the flag that set it when
    ``names`` maps that path to one (``{"modelName": "--name"}``), and the rejected value.
    """
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return one_line(exc)
    parts = []
    for err in errors():
        path = ".".join(str(p) for p in err.get("loc", ()))
        where = prefix + path if path else prefix.rstrip(".") or "value"
        flag = (names or {}).get(path)
        if flag:
            where += f" ({flag} {err.get('input')!r})"
        parts.append(f"{where}: {one_line(err.get('msg', 'invalid'))}")
    return "; ".join(parts) or one_line(exc)


def describe_yaml_error(exc: Exception) -> str:
    """A PyYAML error as one line, ``line L, column C: <problem>`` where it knows the place."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or not problem:
        return one_line(exc)
    context = getattr(exc, "context", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {one_line(problem)}" + (
        f" ({one_line(context)})" if context else ""
    )
