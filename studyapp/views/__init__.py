"""Views: participant pages (token-scoped) and researcher pages (staff only)."""
