"""Keys, encryption at rest and signed links."""
