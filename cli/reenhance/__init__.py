"""`ai-agents reenhance`: the command (command.py) and what it shows."""
