"""Entry point of a rolling-replacement test node: ``python -m tests.rolling_node --records FILE --config FILE
[--versions LOW,HIGH] [--schema v1|v2]`` (see tests/rolling_app.py)."""

from tests.rolling_app import main

if __name__ == "__main__":
    main()
