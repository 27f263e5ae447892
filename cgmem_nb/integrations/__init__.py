"""Integrations: IPython magics, the pytest plugin and the command line."""
