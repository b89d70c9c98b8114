"""The application: the command line, the jobs it runs, and process handling (signals, streams)."""
