"""Calendar tools (GoHighLevel): filled in by the tools issue."""
