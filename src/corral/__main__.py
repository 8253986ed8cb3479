"""`python -m corral` runs the same command as `corral`."""

from corral.entry import main

main()
