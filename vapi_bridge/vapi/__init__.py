"""Vapi's side: webhook authentication, message schemas, and one handler per message type."""
