"""AWS tag compliance and cost attribution: collectors, lake, policy scoring and warehouse."""

__version__ = "0.1.0"
