"""Entry point of a ClusterClient test process."""

from tests.client_app import main

if __name__ == "__main__":
    main()
