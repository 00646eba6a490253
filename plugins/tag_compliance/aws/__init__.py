"""AWS access: the hook (clients, retries, rate limits, accounting) and the collectors."""
