"""HTTP layer: one blueprint per screen plus the JSON API."""
