"""Storage: the only package that knows SQL. The domain asks `Repository` for what it needs."""
