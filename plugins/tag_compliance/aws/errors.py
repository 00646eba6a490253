"""Errors raised by AWS access (kept apart from the hook so collectors import nothing heavy)."""


class AwsCollectionError(RuntimeError):
    """An AWS operation failed for good; the message says where and why."""
