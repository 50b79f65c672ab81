"""Entry point of an observability test node: ``python -m tests.observe_node --secret-file F ...``."""

from tests.observe_app import main

if __name__ == "__main__":
    main()
