"""chulcheo's application layer: settings, the pipeline, and the CLI/API/UI adapters."""
