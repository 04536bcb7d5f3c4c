"""Client side of trust: the pinned, deadline-bounded fetcher and the TUF updater wrapper."""
