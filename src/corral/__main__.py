"""`python -m corral` runs the same command as `corral`; `python -m corral agent ...` (how hosts start their agent)
skips the CLI and its imports (corral/agent/command.py)."""

import sys

if sys.argv[1:2] == ["agent"] and not {"--help", "-h"} & set(sys.argv[2:]):
    from corral.agent.command import main as agent_main

    sys.exit(agent_main(sys.argv[2:]))

from corral.entry import main

main()
