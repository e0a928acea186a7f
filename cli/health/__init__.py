"""`ai-agents health`: the command (command.py) and its checks."""
