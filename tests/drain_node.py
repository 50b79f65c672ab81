"""Entry point of a drain test node: ``python -m tests.drain_node --role producer|consumer --config FILE``."""

from tests.drain_app import main

if __name__ == "__main__":
    main()
