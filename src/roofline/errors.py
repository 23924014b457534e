"""User-facing errors. The CLI prints them as one line and exits with code 2."""


class RooflineError(ValueError):
    """Bad input from the user: a wrong id, an invalid YAML value, a parallel plan that cannot work.

    The message must say what is wrong and how to fix it, in one line.
    """


class UnknownIdError(RooflineError):
    """An id that is not in a catalog; the message lists the closest known ids."""

    def __init__(self, what: str, given: str, known: list[str]) -> None:
        import difflib

        close = difflib.get_close_matches(given, known, n=4, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(sorted(known))}"
        super().__init__(f"unknown {what} '{given}'; {hint}")
        self.given = given
        self.known = known


class DoesNotFitError(RooflineError):
    """Asked for the latency of a configuration that does not fit in memory. The message says how
    far it is over and how to time it anyway (`ignore_memory=True`, `--ignore-memory`)."""
