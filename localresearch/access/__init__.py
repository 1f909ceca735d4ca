"""Who may call the daemon: principals and roles, API keys stored as hashes, the owner's local
credential and peer check, rate limits. No HTTP here: server/access.py applies it to requests."""
