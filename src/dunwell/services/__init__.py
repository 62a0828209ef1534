"""Use cases. Each opens one unit of work, asks the domain, and writes the
state change together with its events and outbox rows in one transaction."""
