"""Entry point of a rolling-replacement test node: ``python -m tests.rolling_node --records FILE --config FILE``."""

from tests.rolling_app import main

if __name__ == "__main__":
    main()
