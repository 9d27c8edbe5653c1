"""Camera ingestion: frame sources, per-camera reader threads, health, the synthetic ward camera."""
