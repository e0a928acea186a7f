"""`ai-agents eval`: the command (command.py) and what it runs."""
