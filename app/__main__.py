"""`python -m app` runs the chulcheo CLI."""

from .cli import main

main()
