"""`ai-agents reindex`: the command (command.py) and its Ray Job."""
