"""The daemon's entry point (`diffusiond`, `python -m diffusiond.server`): the OpenMP environment first.

OpenMP reads how its threads wait for each other once, when torch loads it, so it must be in the
environment before torch is first imported. This module imports nothing heavy: it sets what the user did
not set, then runs the daemon's command line (cli.py) as the main module of this same process.
"""

import os
import runpy

# How long an OpenMP thread spins at a barrier before it sleeps (GNU OpenMP, torch's CPU builds). The default
# (300,000 spins) makes a thread spin through a whole time slice for a partner another process holds off its
# core, at every barrier of a generation: a busy desktop made a job 14x slower. 1000 spins (what libgomp uses
# by itself once threads outnumber cores) keep an idle machine as fast as before (daemon / direct 1.03-1.1 on
# the tiny model) and a busy one from collapsing; OMP_WAIT_POLICY=PASSIVE cost 16-20 % idle. Set to override.
OPENMP_DEFAULTS = {'GOMP_SPINCOUNT': '1000'}


def main() -> None:
	for name, value in OPENMP_DEFAULTS.items():
		os.environ.setdefault(name, value)
	runpy.run_module('diffusiond.server.cli', run_name='__main__', alter_sys=True)
