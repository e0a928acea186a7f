"""`ai-agents demo`: the command (command.py) and what it runs."""
