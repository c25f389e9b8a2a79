"""REST API for researchers (read-only, staff only), with an OpenAPI schema."""
