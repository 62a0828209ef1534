"""Outbound and inbound text: templates, SMS segments, phone numbers and carrier keywords."""
