"""Bitbucket topology lab: reproduce Bitbucket proxy topologies in containers and prove them."""

__version__ = "0.1.0"
