"""Errors raised by AWS access (kept apart from the hook so collectors import nothing heavy)."""


class AwsCollectionError(RuntimeError):
    """An AWS operation failed for good; the message says where and why, ``code`` is AWS's error
    code when it answered with one (``AccessDenied``, ``ThrottlingException``, ...)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
