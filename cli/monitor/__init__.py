"""The dashboard behind `gridiron monitor`."""
