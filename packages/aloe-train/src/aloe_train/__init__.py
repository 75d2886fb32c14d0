"""aloe-train."""
