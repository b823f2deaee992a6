"""The data-safety contract: every command fails in one line and never loses data."""
