import sys

from lpds_sim.cli import main

sys.exit(main())
