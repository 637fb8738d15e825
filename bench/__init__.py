"""Load benchmarks of supportchat against a bare python-socketio relay: python -m bench."""
