"""prompts: filled in by later issues."""
