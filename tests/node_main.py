"""Entry point of a test node process: ``python -m tests.node_main --name test --port 0``."""

from tests.remote_app import main

if __name__ == "__main__":
    main()
