"""Entry point of a cluster test node: ``python -m tests.cluster_node --seed host:port``."""

from tests.cluster_app import main

if __name__ == "__main__":
    main()
