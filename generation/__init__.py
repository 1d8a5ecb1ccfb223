"""generation: filled in by later issues."""
