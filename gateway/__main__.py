"""`python -m gateway` runs the pulsegate command line."""

from gateway.cli import main

main()
