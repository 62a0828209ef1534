"""HTTP: the REST API, inbound webhooks and hosted pages."""
