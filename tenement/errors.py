"""The error every layer raises for a problem the user can act on.

The CLI turns a :class:`TenementError` into a message and an exit code in one place
(``tenement/cli/__init__.py``); the API turns it into ``{"error": message}``.
"""


class TenementError(Exception):
    """A failure with a message meant for the user.

    Attributes:
        exit_code: what ``ten`` exits with when this error ends a command
            (1 = failure, 2 = bad input, as click does).
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
