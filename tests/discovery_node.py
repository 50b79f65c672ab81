"""Entry point of a DNS-discovery test node: ``python -m tests.discovery_node --records FILE --config FILE``."""

from tests.discovery_app import main

if __name__ == "__main__":
    main()
