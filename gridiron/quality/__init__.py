"""Data quality: pandera schemas, relationship and integrity checks, quality scores."""
