"""The browser page the daemon serves at `/`: static files shipped inside the package."""
