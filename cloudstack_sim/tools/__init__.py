"""Developer tools for the simulator (data generators); not imported at run time."""
