"""Vapi's side: webhook authentication, message schemas, and reading messages."""
