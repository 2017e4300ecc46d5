"""The leaderboard's parts: which files are entries, and the ranked board as JSON, CSV and a page."""
