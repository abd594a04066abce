"""Messages to people about stops: what each chat bot is sent (formats.py) and the sender (sender.py)."""
